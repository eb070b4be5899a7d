// Package testregistry starts real registries in process for tests:
// distribution v3 (no referrers API) and go-containerregistry's registry
// with the referrers API, and seeds them with images built in code.
package testregistry

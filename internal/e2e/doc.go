// Package e2e runs the bundle binary as a process against real registries:
// in-process test registries as sources, Debian's docker-registry as the
// air-gapped target, and skopeo as an independent client. The tests skip
// when docker-registry or skopeo is missing, unless BUNDLE_E2E=1.
package e2e

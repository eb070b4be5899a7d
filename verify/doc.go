// Package verify checks digests and sizes: the verifying reader every other
// package wraps its streams in, and the offline whole-bundle check.
package verify

// Package layout reads and writes an OCI image layout as a tar stream,
// optionally compressed (gzip, or zstd in the seekable format), and as a
// plain directory. It knows nothing of registries: it hands out raw readers
// and leaves digest verification to the caller (package verify).
package layout

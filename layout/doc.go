// Package layout reads and writes an OCI image layout as a tar stream,
// optionally compressed (gzip, or zstd in the seekable format), and as a
// plain directory. It knows nothing of registries: it hands out raw readers
// and leaves digest verification to the caller (package verify).
//
// The zstd output is a sequence of independent frames followed by a seek
// table (the zstd seekable format). Every tar header gets a frame of its
// own and large contents are cut every ChunkSize bytes, so OpenArchive can
// list an archive by decompressing only the headers' frames and Open can
// decompress one entry alone; plain `zstd -d` still reads the whole.
//
// Every reader (NewReader, OpenArchive, OpenDir) refuses anything but
// regular files named oci-layout, index.json and blobs/ALG/HEX, each once.
package layout

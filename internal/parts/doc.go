// Package parts carries one archive as several files: FILE.000, FILE.001,
// … whose concatenation is the archive, Reed-Solomon parity parts
// FILE.p000, … that rebuild lost or damaged ones, and FILE.sha256 listing
// every part in sha256sum format. The writer is an io.Writer that cuts the
// stream as it goes; the reader is an io.ReaderAt over the parts. Nothing
// here knows what the archive holds.
package parts

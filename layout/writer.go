package layout

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"
)

// DefaultChunkSize is the most uncompressed bytes of one zstd frame (and one
// pgzip block): small enough to seek cheaply, large enough to compress well.
// Each frame in flight holds a chunk in and a chunk out, and each encoder a
// window of a chunk: measured, 4 MiB chunks put the writer's heap at about
// 80 MiB, 1 MiB at about 20, for a ratio within 1% on text.
const DefaultChunkSize = 1 << 20

// maxChunkSize keeps a frame's sizes within the seek table's 32-bit fields.
const maxChunkSize = 256 << 20

// WriterOptions tune compression. Zero values choose the defaults.
type WriterOptions struct {
	Level       int // gzip 1..9 (default 6), zstd 1..22 (default 3); ignored for none
	Concurrency int // compression workers (default GOMAXPROCS)
	ChunkSize   int // uncompressed bytes per zstd frame / gzip block (default 4 MiB)
}

// epoch is the modification time of every entry, so that the same content
// always makes the same archive bytes.
var epoch = time.Unix(0, 0).UTC()

// Writer writes a layout as a tar stream, compressed as asked. Entries go
// out in the order WriteEntry is called. Close must be called, also after
// an error, to stop the compression workers. Only Written may be called
// concurrently with the other methods.
type Writer struct {
	out    *countingWriter
	sink   sink
	tw     *tar.Writer
	err    error // sticky: after a failure the stream is unusable
	closed bool
	// copyBuf makes each read of an entry's source, and each write below
	// the tar writer, a large one.
	copyBuf []byte
}

const copyBufSize = 1 << 20

// tailCutMin is the content size above which the last byte gets a frame
// of its own; below it the content's one frame is cheap to decode anyway.
const tailCutMin = 64 << 10

// sink is the compression below the tar writer. The Writer tells it where
// entries start so it can cut frames and pick a level for the content.
type sink interface {
	io.Writer
	// beginHeader is called before an entry's tar header; precompressed
	// says what the entry's content will be.
	beginHeader(precompressed bool) error
	// beginContent is called after the header, before the content.
	beginContent(precompressed bool) error
	// beginTail is called before the last byte of a large content.
	beginTail(precompressed bool) error
	// close flushes everything and writes what ends the stream.
	close() error
	// abort stops any workers after a failure without writing more.
	abort()
}

// NewWriter starts a layout tar stream on w. It does not close w.
func NewWriter(w io.Writer, c Compression, opts WriterOptions) (*Writer, error) {
	opts, err := opts.withDefaults(c)
	if err != nil {
		return nil, err
	}
	out := &countingWriter{w: w}
	var s sink
	switch c {
	case None:
		s = plainSink{out}
	case Gzip:
		s, err = newGzipSink(out, opts)
	case Zstd:
		s, err = newSeekableSink(out, opts)
	default:
		err = fmt.Errorf("unknown compression %q: use zstd, gzip or none", c)
	}
	if err != nil {
		return nil, err
	}
	return &Writer{out: out, sink: s, tw: tar.NewWriter(s)}, nil
}

func (o WriterOptions) withDefaults(c Compression) (WriterOptions, error) {
	if o.Concurrency < 0 || o.ChunkSize < 0 {
		return o, fmt.Errorf("writer options: concurrency %d and chunk size %d must not be negative", o.Concurrency, o.ChunkSize)
	}
	if o.Concurrency == 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < 64<<10 || o.ChunkSize > maxChunkSize {
		return o, fmt.Errorf("writer options: chunk size %d must be between 64 KiB and 256 MiB", o.ChunkSize)
	}
	switch {
	case c == Gzip && o.Level == 0:
		o.Level = 6
	case c == Gzip && (o.Level < 1 || o.Level > 9):
		return o, fmt.Errorf("writer options: gzip level %d must be between 1 and 9", o.Level)
	case c == Zstd && o.Level == 0:
		o.Level = 3
	case c == Zstd && (o.Level < 1 || o.Level > 22):
		return o, fmt.Errorf("writer options: zstd level %d must be between 1 and 22", o.Level)
	}
	return o, nil
}

// WriteEntry writes one file of exactly size bytes read from r. It reads r
// to its end, so a verifying reader gets to check its digest; more bytes
// than size are an error. precompressed marks content that is not worth
// compressing again (gzip or zstd layers): it is stored cheaply.
func (w *Writer) WriteEntry(name string, size int64, r io.Reader, precompressed bool) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return fmt.Errorf("write %s: layout writer is closed", name)
	}
	if err := CheckName(name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if size < 0 {
		return fmt.Errorf("write %s: negative size %d", name, size)
	}
	if err := w.writeEntry(name, size, r, precompressed); err != nil {
		w.err = err
		return err
	}
	return nil
}

func (w *Writer) writeEntry(name string, size int64, r io.Reader, precompressed bool) error {
	if err := w.sink.beginHeader(precompressed); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := w.tw.WriteHeader(entryHeader(name, size)); err != nil {
		return fmt.Errorf("write %s: tar header: %w", name, err)
	}
	if err := w.sink.beginContent(precompressed); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if w.copyBuf == nil {
		w.copyBuf = make([]byte, copyBufSize)
	}
	// A reader listing the archive skips content by seeking to its last
	// byte and reading it (archive/tar does, to notice truncation): that
	// byte gets a frame of its own, so that skipping a large entry decodes
	// a few bytes rather than the chunk it would end.
	head := size
	if size > tailCutMin {
		head = size - 1
	}
	n, err := io.CopyBuffer(w.tw, io.LimitReader(r, head), w.copyBuf)
	if err == nil && n == head && head < size {
		if err = w.sink.beginTail(precompressed); err == nil {
			var k int64
			k, err = io.CopyN(w.tw, r, size-head)
			n += k
		}
	}
	if err == nil && n < size {
		err = io.EOF
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("write %s: source ended after %d of %d bytes: %w", name, n, size, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("write %s after %d of %d bytes: %w", name, n, size, err)
	}
	if err := expectEOF(r); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	// Flush writes the entry's padding now, so that it ends the content's
	// last frame and the next header gets a frame of its own.
	if err := w.tw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// entryHeader is the tar header of every entry Writer writes.
func entryHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch}
}

// canonicalHeader reports whether raw is exactly the header blocks Writer
// writes for the entry hdr describes.
func canonicalHeader(hdr *tar.Header, raw []byte) bool {
	if raw == nil || hdr.Typeflag != tar.TypeReg {
		return false
	}
	var b bytes.Buffer
	if err := tar.NewWriter(&b).WriteHeader(entryHeader(hdr.Name, hdr.Size)); err != nil {
		return false
	}
	return bytes.Equal(b.Bytes(), raw)
}

// expectEOF reads past the declared size: a verifying reader reports a
// digest mismatch only at EOF, and a longer source is a size mismatch.
func expectEOF(r io.Reader) error {
	var one [1]byte
	_, err := io.ReadFull(r, one[:])
	switch {
	case err == io.EOF:
		return nil
	case err == nil:
		return errors.New("source has more bytes than the declared size")
	}
	return err
}

// Close writes the tar trailer, flushes the compression and, for zstd,
// writes the seek table. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		// A stream that failed halfway must not end like a good one.
		w.sink.abort()
		return w.err
	}
	if err := w.close(); err != nil {
		w.sink.abort()
		w.err = fmt.Errorf("close layout archive: %w", err)
	}
	return w.err
}

func (w *Writer) close() error {
	if err := w.sink.beginHeader(false); err != nil {
		return err
	}
	if err := w.tw.Close(); err != nil {
		return fmt.Errorf("tar trailer: %w", err)
	}
	return w.sink.close()
}

// Written is the number of bytes written to the underlying writer so far.
// It is safe to call from another goroutine (a progress bar).
func (w *Writer) Written() int64 { return w.out.n.Load() }

type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

type plainSink struct{ io.Writer }

func (plainSink) beginHeader(bool) error  { return nil }
func (plainSink) beginContent(bool) error { return nil }
func (plainSink) beginTail(bool) error    { return nil }
func (plainSink) close() error            { return nil }
func (plainSink) abort()                  {}

package layout

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

const (
	// maxEntries bounds the entries (files and skipped directories) of one
	// archive, so that a hostile archive cannot grow the duplicate set
	// without end.
	maxEntries = 1 << 22
	// maxTrailing bounds what is read after the tar end-of-archive marker
	// to check the compressed stream's own end (gzip CRC, zstd checksum).
	maxTrailing = 1 << 20
	// maxWindow matches the default limit of the zstd command line tool.
	maxWindow = 128 << 20
	tarBlock  = 512
	// maxEntrySize keeps offset arithmetic far from overflow; no blob
	// comes near it.
	maxEntrySize = 1 << 50
)

// Reader reads a layout tar stream front to back, whatever its compression
// and entry order. Every entry passes the safety rules before it is
// returned.
type Reader struct {
	comp  Compression
	in    *countingReader // compressed input, counts what the decoder consumed
	tarIn *countingReader // decompressed tar stream
	tr    *tar.Reader
	cur   string
	seen  map[string]bool
	count int
	// end is where the last entry's padded content ends in the tar stream:
	// a well-formed archive has its end-of-archive marker there.
	end int64
	err error
}

// NewReader starts reading a layout tar stream from r, detecting gzip and
// zstd by their magic bytes.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	prefix, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	in := &countingReader{r: br}
	rd := &Reader{comp: DetectCompression(prefix), in: in, seen: map[string]bool{}}
	var dec io.Reader
	switch rd.comp {
	case Gzip:
		gz, err := gzip.NewReader(in)
		if err != nil {
			return nil, fmt.Errorf("read gzip archive header: %w", err)
		}
		dec = gz
	case Zstd:
		// A decoder without goroutines: Reader has no Close, so nothing
		// may be left running when a caller stops reading early.
		zr, err := newDecoder(in)
		if err != nil {
			return nil, err
		}
		dec = zr
	default:
		dec = in
	}
	rd.tarIn = &countingReader{r: dec}
	rd.tr = tar.NewReader(rd.tarIn)
	return rd, nil
}

// Compression is the compression detected from the stream's first bytes.
func (r *Reader) Compression() Compression { return r.comp }

// Offset is how many bytes of compressed input the decoder has consumed:
// where a damaged stream broke, give or take the decoder's buffer.
func (r *Reader) Offset() int64 { return r.in.n }

// Next advances to the next regular file, skipping the directory entries
// some writers add. It returns io.EOF at the end of a complete archive.
func (r *Reader) Next() (Entry, error) {
	if r.err != nil {
		return Entry{}, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
		r.cur = ""
	}
	return e, err
}

func (r *Reader) next() (Entry, error) {
	for {
		hdr, err := r.tr.Next()
		if errors.Is(err, io.EOF) {
			return Entry{}, r.finish()
		}
		if err != nil {
			return Entry{}, r.broken(fmt.Sprintf("the tar header after %s", r.after()), err)
		}
		if r.count++; r.count > maxEntries {
			return Entry{}, fmt.Errorf("%w: more than %d entries in the archive", ErrUnsafeEntry, maxEntries)
		}
		name, skip, err := classify(hdr)
		if err != nil {
			return Entry{}, fmt.Errorf("entry %d at tar offset %d: %w", r.count, r.tarIn.n, err)
		}
		if hdr.Size > maxEntrySize {
			return Entry{}, fmt.Errorf("%w: %q claims %d bytes", ErrUnsafeEntry, hdr.Name, hdr.Size)
		}
		r.end = r.tarIn.n + padded(hdr.Size)
		if skip {
			continue
		}
		if r.seen[name] {
			return Entry{}, fmt.Errorf("%w: %q appears twice in the archive", ErrUnsafeEntry, name)
		}
		r.seen[name] = true
		r.cur = name
		return Entry{Name: name, Size: hdr.Size}, nil
	}
}

func (r *Reader) after() string {
	if r.cur == "" {
		return "the start"
	}
	return r.cur
}

// finish checks the end of the archive: the tar end-of-archive marker must
// be there (a stream cut at an entry boundary otherwise looks complete),
// and the compressed stream must end cleanly after it.
func (r *Reader) finish() error {
	if r.tarIn.n < r.end+2*tarBlock {
		return r.broken("the tar end-of-archive marker", io.ErrUnexpectedEOF)
	}
	if _, err := io.CopyN(io.Discard, r.tarIn, maxTrailing); err != nil && !errors.Is(err, io.EOF) {
		return r.broken("the end of the archive", err)
	}
	return io.EOF
}

// broken describes a stream that failed at some point, naming where.
func (r *Reader) broken(what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	hint := "the file is damaged"
	if errors.Is(err, io.ErrUnexpectedEOF) {
		hint = "the file is truncated"
	}
	return fmt.Errorf("read %s archive at compressed offset %d (tar offset %d), reading %s: %w; %s: copy it again and check it against its .sha256",
		r.comp, r.in.n, r.tarIn.n, what, err, hint)
}

// Read reads the content of the current entry.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.cur == "" {
		return 0, errors.New("read layout archive: no current entry: call Next first")
	}
	n, err := r.tr.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = r.broken(r.cur, err)
		r.err = err
	}
	return n, err
}

func padded(size int64) int64 {
	return (size + tarBlock - 1) &^ (tarBlock - 1)
}

// countingReader counts bytes read through it. It passes ReadByte through
// so that gzip reads exactly what it needs instead of adding a buffer.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	br, ok := c.r.(io.ByteReader)
	if !ok {
		var b [1]byte
		_, err := io.ReadFull(c, b[:])
		return b[0], err
	}
	b, err := br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

package layout

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// Reader reads a layout tar front to back, one entry at a time. It is the
// one tar parser of bundle: verify, inspect, import, serve and salvage all
// read archives through it, streamed or seekable, so that they all see the
// same entries at the same offsets. Every entry passes the safety rules
// before it is returned; the padding after each entry must be zero and
// nothing but zeros may follow the end-of-archive marker, so that every
// byte of a plain tar is either checked or content.
//
// A Reader made by NewSeekableReader skips the content it is not asked for
// by seeking (archive/tar does that for an io.Seeker), and decompresses a
// zstd archive frame by frame through its seek table, which it checks.
type Reader struct {
	comp Compression
	in   *countingReader // compressed input of a stream; nil when seekable
	z    *seekable       // zstd seek table; nil otherwise
	src  *tarSource      // the tar stream
	tr   *tar.Reader

	// declared is what the entries so far declare, budget what they may:
	// a stream's size times the compression's ratio, a seekable
	// archive's exact tar size; -1 when unknown (standard input).
	declared, budget int64
	exact            bool // budget is the tar stream's exact size

	count int
	seen  map[string]struct{}
	next  int64  // tar offset of the next header
	cur   string // the entry being read, "" before the first
	last  string // the last entry returned, for errors
	err   error
}

// Entry is one regular file of the layout.
type Entry struct {
	Name   string // "oci-layout", "index.json" or "blobs/<alg>/<hex>"
	Size   int64
	Header int64 // tar offset of its first header block (a PAX header, if any)
	Offset int64 // tar offset of its content
	// Canonical says its header blocks are byte for byte what Writer
	// writes for such an entry: in an archive bundle wrote, anything else
	// is damage that parsed (a checksum's terminator, a padding byte).
	Canonical bool
}

// NewReader starts reading a layout tar stream from r, detecting gzip and
// zstd by their magic bytes. size is the stream's length when known (a
// file), or -1: it bounds what the entries may declare.
func NewReader(r io.Reader, size int64) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	prefix, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	in := &countingReader{r: br}
	comp := DetectCompression(prefix)
	var dec io.Reader
	switch comp {
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
	rd := newReader(comp, &tarSource{r: dec})
	rd.in = in
	if size >= 0 {
		// A plain tar is its own tar stream: its size is exact.
		rd.budget, rd.exact = size*maxRatio(comp), comp == None
	}
	return rd, nil
}

// NewSeekableReader reads the archive in ra (size bytes) like NewReader,
// but at random: a plain tar, or zstd with a seek table. Gzip archives and
// zstd archives without a seek table give an error wrapping
// ErrNotSeekable; read those with NewReader.
func NewSeekableReader(ra io.ReaderAt, size int64) (*Reader, error) {
	var prefix [4]byte
	n, err := ra.ReadAt(prefix[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	switch comp := DetectCompression(prefix[:n]); comp {
	case Gzip:
		return nil, fmt.Errorf("gzip archive: %w; it can only be read as a stream", ErrNotSeekable)
	case Zstd:
		z, err := openSeekable(ra, size)
		if err != nil {
			return nil, err
		}
		rd := newReader(Zstd, &tarSource{r: z.stream(0, z.size(), "the tar stream"), seek: true})
		rd.z = z
		rd.budget, rd.exact = z.size(), true
		return rd, nil
	default:
		rd := newReader(None, &tarSource{r: io.NewSectionReader(ra, 0, size), seek: true})
		rd.budget, rd.exact = size, true
		return rd, nil
	}
}

func newReader(c Compression, src *tarSource) *Reader {
	rd := &Reader{comp: c, src: src, budget: -1, seen: map[string]struct{}{}}
	if src.seek {
		rd.tr = tar.NewReader(seekingSource{src})
	} else {
		rd.tr = tar.NewReader(src)
	}
	return rd
}

// Compression is the compression detected from the archive's first bytes.
func (r *Reader) Compression() Compression { return r.comp }

// Seekable reports whether the reader skips content by seeking.
func (r *Reader) Seekable() bool { return r.src.seek }

// Offset is where in the archive file the reader stands: the compressed
// offset (give or take a decoder's buffer for a stream, the start of the
// frame for a seekable zstd archive), for saying where damage is.
func (r *Reader) Offset() int64 {
	switch {
	case r.in != nil:
		return r.in.n
	case r.z != nil:
		return r.z.compressedOffset(r.src.pos)
	}
	return r.src.pos
}

// TarOffset is where in the tar stream the reader stands.
func (r *Reader) TarOffset() int64 { return r.src.pos }

// Next advances to the next regular file, skipping the directory entries
// some writers add, and the content of the current entry if it was not
// read. It returns io.EOF at the end of a complete archive.
func (r *Reader) Next() (Entry, error) {
	if r.err != nil {
		return Entry{}, r.err
	}
	e, err := r.nextEntry()
	if err != nil {
		r.err = err
		r.cur = ""
	}
	return e, err
}

func (r *Reader) nextEntry() (Entry, error) {
	for {
		at := r.next
		r.src.capture(at)
		hdr, err := r.tr.Next()
		if errors.Is(err, io.EOF) {
			return Entry{}, r.finish(at)
		}
		if err != nil {
			return Entry{}, r.broken(at, fmt.Sprintf("the tar header at tar offset %d", at), err)
		}
		r.count++
		if r.count > MaxEntries {
			return Entry{}, fmt.Errorf("%w: more than %d entries (the limit of one archive)", ErrUnsafeEntry, MaxEntries)
		}
		name, skip, err := classify(hdr)
		if err != nil {
			return Entry{}, fmt.Errorf("entry %d at tar offset %d: %w", r.count, at, err)
		}
		data := r.src.pos
		if err := r.checkSize(hdr, data); err != nil {
			return Entry{}, fmt.Errorf("entry %q at tar offset %d: %w", hdr.Name, at, err)
		}
		r.src.expectZeros(data+hdr.Size, data+padded(hdr.Size))
		r.next = data + padded(hdr.Size)
		if skip {
			continue
		}
		if _, dup := r.seen[name]; dup {
			return Entry{}, fmt.Errorf("%w: %q appears twice in the archive (the second at tar offset %d)", ErrUnsafeEntry, name, at)
		}
		r.seen[name] = struct{}{}
		r.cur, r.last = name, name
		raw := r.src.captured(data)
		return Entry{Name: name, Size: hdr.Size, Header: at, Offset: data, Canonical: canonicalHeader(hdr, raw)}, nil
	}
}

// checkSize bounds what an entry declares: within the tar stream when its
// size is known, within the stream's size times the compression's ratio
// otherwise, and far from overflow always.
func (r *Reader) checkSize(hdr *tar.Header, data int64) error {
	if hdr.Size > maxEntrySize {
		return fmt.Errorf("%w: it claims %d bytes", ErrUnsafeEntry, hdr.Size)
	}
	if r.budget < 0 {
		return nil
	}
	if r.exact {
		if hdr.Size > r.budget-data {
			return fmt.Errorf("it claims %d bytes, more than the archive holds after it (%d): the file is truncated or damaged: %w", hdr.Size, max(r.budget-data, 0), io.ErrUnexpectedEOF)
		}
		return nil
	}
	r.declared += hdr.Size
	if r.declared > r.budget {
		return fmt.Errorf("%w: the entries so far claim %d bytes, more than a %s archive of this size can hold (%d)", ErrUnsafeEntry, r.declared, r.comp, r.budget)
	}
	return nil
}

// finish checks the end of the archive: the tar end-of-archive marker must
// be there (a stream cut at an entry boundary otherwise looks complete),
// only zeros may follow it, and the compressed stream must end cleanly.
func (r *Reader) finish(at int64) error {
	if r.src.pos < at+2*tarBlock {
		return r.broken(at, fmt.Sprintf("the tar end-of-archive marker at tar offset %d", at), io.ErrUnexpectedEOF)
	}
	r.src.expectZeros(r.src.pos, r.src.pos+maxTrailing)
	n, err := io.CopyN(io.Discard, r.src, maxTrailing+1)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return r.broken(r.src.pos, "the end of the archive", err)
	case n > maxTrailing:
		return fmt.Errorf("read %s archive: more than %d bytes after the tar end-of-archive marker at tar offset %d: the file is damaged or is not one archive", r.comp, maxTrailing, at)
	}
	return io.EOF
}

// broken describes a stream that failed, naming where.
func (r *Reader) broken(tarOff int64, what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	var dmg *damagedFrameError
	hint := "the file is damaged: copy it again and check it against its .sha256"
	switch {
	case errors.As(err, &dmg):
		hint = ""
	case errors.Is(err, io.ErrUnexpectedEOF):
		hint = "the file is truncated: copy it again and check it against its .sha256"
	case errors.Is(err, tar.ErrHeader) && r.count == 0 && tarOff == 0:
		hint = "this is not a tar archive (nor gzip or zstd): is it a bundle?"
	}
	after := ""
	if r.last != "" {
		after = " (after " + r.last + ")"
	}
	msg := fmt.Sprintf("read %s archive at offset %d, %s%s: %v", r.comp, r.Offset(), what, after, err)
	if hint != "" {
		msg += "; " + hint
	}
	return &readError{msg: msg, err: err, off: r.Offset()}
}

// readError keeps the cause for errors.Is without repeating it.
type readError struct {
	msg string
	err error
	off int64
}

func (e *readError) Error() string { return e.msg }
func (e *readError) Unwrap() error { return e.err }

// ArchiveOffset is where in the archive file reading failed.
func (e *readError) ArchiveOffset() int64 { return e.off }

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
		err = r.broken(r.src.pos, r.cur, err)
		r.err = err
	}
	return n, err
}

func padded(size int64) int64 {
	return (size + tarBlock - 1) &^ (tarBlock - 1)
}

// tarSource is the tar stream under archive/tar: it knows its position
// and checks that the bytes archive/tar skips without looking (the padding
// after an entry, what follows the end-of-archive marker) are zero.
type tarSource struct {
	r              io.Reader
	seek           bool // r is an io.Seeker
	pos            int64
	zeroFrom, zero int64 // bytes in [zeroFrom, zero) must be zero
	// The header blocks of the entry being read: the bytes from capFrom
	// on, at most maxCapture of them.
	capFrom int64
	cap     []byte
}

// maxCapture bounds the header bytes kept per entry; a longer header
// (a PAX header of long records) is simply not canonical.
const maxCapture = 16 << 10

func (s *tarSource) expectZeros(from, to int64) { s.zeroFrom, s.zero = from, to }

func (s *tarSource) capture(from int64) { s.capFrom, s.cap = from, s.cap[:0] }

// captured returns the header blocks up to to, nil if not all were kept.
func (s *tarSource) captured(to int64) []byte {
	if n := to - s.capFrom; n >= 0 && n <= int64(len(s.cap)) {
		return s.cap[:n]
	}
	return nil
}

func (s *tarSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if lo, hi := max(s.pos, s.zeroFrom), min(s.pos+int64(n), s.zero); lo < hi {
		if i := firstNonZero(p[lo-s.pos : hi-s.pos]); i >= 0 {
			return 0, fmt.Errorf("tar offset %d: a byte that must be zero (padding) is not: %w", lo+int64(i), errNotZero)
		}
	}
	if lo := max(s.pos, s.capFrom); lo < s.pos+int64(n) && int64(len(s.cap)) == lo-s.capFrom && len(s.cap) < maxCapture {
		s.cap = append(s.cap, p[lo-s.pos:min(int64(n), lo-s.pos+int64(maxCapture-len(s.cap)))]...)
	}
	s.pos += int64(n)
	return n, err
}

var errNotZero = errors.New("damaged padding")

func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// seekingSource lets archive/tar skip content by seeking.
type seekingSource struct{ *tarSource }

func (s seekingSource) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	default:
		return 0, errors.New("tar stream: seek from the end is not supported")
	}
	if _, err := s.r.(io.Seeker).Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	s.pos = off
	return off, nil
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

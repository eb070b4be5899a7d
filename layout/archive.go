package layout

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// Archive gives random access to a layout tar: plain, or zstd with a seek
// table. It reads only what it needs: listing touches the tar headers,
// opening an entry the bytes (or zstd frames) of that entry.
type Archive struct {
	ra      *countingReaderAt
	comp    Compression
	table   *seekTable // nil for a plain tar
	entries []Entry
	byName  map[string]int
	data    []int64 // offset of each entry's content in the tar stream
	decs    sync.Pool
}

// OpenArchive lists the archive in ra of the given size. Gzip archives and
// zstd archives without a seek table cannot be read at random: it returns
// an error wrapping ErrNotSeekable for them; read those with NewReader.
func OpenArchive(ra io.ReaderAt, size int64) (*Archive, error) {
	a := &Archive{ra: &countingReaderAt{ra: ra}, byName: map[string]int{}}
	var prefix [4]byte
	n, err := a.ra.ReadAt(prefix[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	a.comp = DetectCompression(prefix[:n])
	var tarSize int64
	switch a.comp {
	case Gzip:
		return nil, fmt.Errorf("gzip archive: %w; it can only be read as a stream", ErrNotSeekable)
	case Zstd:
		if a.table, err = readSeekTable(a.ra, size); err != nil {
			return nil, err
		}
		tarSize = a.table.doff[len(a.table.frames)]
	default:
		tarSize = size
	}
	if err := a.list(tarSize); err != nil {
		return nil, err
	}
	return a, nil
}

// list walks the tar headers by offset. archive/tar parses each header
// (PAX, GNU long names) from a reader positioned at it; counting what it
// consumed gives where the content starts, and the size where the next
// header is. Content is never read.
func (a *Archive) list(tarSize int64) error {
	var off int64
	for {
		if len(a.entries) >= maxEntries {
			return fmt.Errorf("%w: more than %d entries in the archive", ErrUnsafeEntry, maxEntries)
		}
		src := a.tarAt(off, tarSize)
		cr := &countingReader{r: src}
		hdr, err := tar.NewReader(cr).Next()
		src.Close()
		if errors.Is(err, io.EOF) {
			if cr.n < 2*tarBlock {
				return fmt.Errorf("read %s archive: no tar end-of-archive marker at tar offset %d: %w; the file is truncated: copy it again", a.comp, off, io.ErrUnexpectedEOF)
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			var dmg *damagedFrameError
			if errors.As(err, &dmg) {
				return fmt.Errorf("read %s archive: tar header at tar offset %d: %w", a.comp, off, err)
			}
			return fmt.Errorf("read %s archive: tar header at tar offset %d: %w; the file is damaged or truncated: copy it again", a.comp, off, err)
		}
		name, skip, err := classify(hdr)
		if err != nil {
			return fmt.Errorf("entry at tar offset %d: %w", off, err)
		}
		data := off + cr.n
		if hdr.Size > tarSize-data {
			return fmt.Errorf("read %s archive: entry %q at tar offset %d claims %d bytes, more than the archive holds: the file is truncated or damaged", a.comp, hdr.Name, off, hdr.Size)
		}
		off = data + padded(hdr.Size)
		if skip {
			continue
		}
		if _, dup := a.byName[name]; dup {
			return fmt.Errorf("%w: %q appears twice in the archive", ErrUnsafeEntry, name)
		}
		a.byName[name] = len(a.entries)
		a.entries = append(a.entries, Entry{Name: name, Size: hdr.Size})
		a.data = append(a.data, data)
	}
}

// tarAt reads the tar stream from offset off to its end.
func (a *Archive) tarAt(off, tarSize int64) io.ReadCloser {
	if a.table == nil {
		return io.NopCloser(io.NewSectionReader(a.ra, off, max(tarSize-off, 0)))
	}
	return a.newFrameReader(off, max(tarSize-off, 0), "the tar stream")
}

// Entries lists the regular files in archive order.
func (a *Archive) Entries() []Entry { return append([]Entry(nil), a.entries...) }

// Compression is the archive's compression (None or Zstd).
func (a *Archive) Compression() Compression { return a.comp }

// BytesRead is how many bytes were read from the underlying ReaderAt so far.
func (a *Archive) BytesRead() int64 { return a.ra.n.Load() }

// Open returns the content of one entry. It is safe for concurrent use;
// for zstd it decompresses only the frames that hold the entry.
func (a *Archive) Open(name string) (io.ReadCloser, error) {
	i, ok := a.byName[name]
	if !ok {
		return nil, fmt.Errorf("open %s in archive: %w", name, fs.ErrNotExist)
	}
	off, size := a.data[i], a.entries[i].Size
	if a.table == nil {
		return io.NopCloser(io.NewSectionReader(a.ra, off, size)), nil
	}
	return a.newFrameReader(off, size, name), nil
}

// frameReader reads size bytes of the decompressed stream from off,
// decompressing frame after frame with a pooled, goroutine-free decoder.
type frameReader struct {
	a         *Archive
	name      string
	frame     int   // the frame being decoded
	skip      int64 // bytes to drop at the start of the first frame
	left      int64 // bytes still to return
	dec       *zstd.Decoder
	open      bool  // dec is positioned in a.table.frames[frame]
	got       int64 // bytes decoded from the current frame
	err       error
	closeOnce sync.Once
}

func (a *Archive) newFrameReader(off, size int64, name string) *frameReader {
	i := a.table.frameAt(off)
	fr := &frameReader{a: a, name: name, frame: i, left: size}
	if i < len(a.table.frames) {
		fr.skip = off - a.table.doff[i]
	}
	return fr
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.left == 0 {
		return 0, io.EOF
	}
	n, err := f.read(p)
	if err != nil {
		f.err = err
	}
	return n, err
}

func (f *frameReader) read(p []byte) (int, error) {
	t := f.a.table
	for {
		if f.frame >= len(t.frames) {
			return 0, fmt.Errorf("read %s: the archive's frames end %d bytes early: the file is damaged", f.name, f.left)
		}
		if !f.open {
			if err := f.start(); err != nil {
				return 0, err
			}
			continue
		}
		if int64(len(p)) > f.left {
			p = p[:f.left]
		}
		n, err := f.dec.Read(p)
		f.got += int64(n)
		f.left -= int64(n)
		if f.got > int64(t.frames[f.frame].dsize) {
			return 0, f.frameErr(errFrameSize)
		}
		if errors.Is(err, io.EOF) {
			if f.got != int64(t.frames[f.frame].dsize) {
				return n, f.frameErr(errFrameSize)
			}
			f.frame++
			f.open = false
			err = nil
		}
		if err != nil {
			return n, f.frameErr(err)
		}
		if n > 0 || f.left == 0 {
			return n, nil
		}
	}
}

// start positions the decoder at the beginning of the current frame and
// drops the bytes before the wanted offset.
func (f *frameReader) start() error {
	t := f.a.table
	fr := t.frames[f.frame]
	if f.dec == nil {
		d, err := f.a.decoder()
		if err != nil {
			return err
		}
		f.dec = d
	}
	sec := io.NewSectionReader(f.a.ra, t.coff[f.frame], int64(fr.csize))
	if err := f.dec.Reset(sec); err != nil {
		return f.frameErr(err)
	}
	f.open, f.got = true, 0
	if f.skip > 0 {
		n, err := io.CopyN(io.Discard, f.dec, f.skip)
		f.got = n
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errFrameSize
			}
			return f.frameErr(err)
		}
		f.skip = 0
	}
	return nil
}

func (f *frameReader) frameErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	t := f.a.table
	return &damagedFrameError{
		what:  f.name,
		frame: f.frame,
		off:   t.coff[f.frame],
		f:     t.frames[f.frame],
		err:   err,
	}
}

// damagedFrameError names the zstd frame where reading an entry failed.
type damagedFrameError struct {
	what  string
	frame int
	off   int64
	f     seekFrame
	err   error
}

func (e *damagedFrameError) Error() string {
	return fmt.Sprintf("read %s: zstd frame %d at compressed offset %d (%d bytes, %d decompressed): %v; the archive is damaged: copy it again and check it against its .sha256",
		e.what, e.frame, e.off, e.f.csize, e.f.dsize, e.err)
}

func (e *damagedFrameError) Unwrap() error { return e.err }

// Close returns the decoder to the pool.
func (f *frameReader) Close() error {
	f.closeOnce.Do(func() {
		if f.dec != nil {
			_ = f.dec.Reset(nil)
			f.a.decs.Put(f.dec)
			f.dec = nil
		}
		if f.err == nil {
			f.err = errors.New("read " + f.name + ": reader is closed")
		}
	})
	return nil
}

// decoder takes a decoder from the pool. One without goroutines: readers
// may be dropped without Close, and frames are decoded one at a time.
func (a *Archive) decoder() (*zstd.Decoder, error) {
	if d, ok := a.decs.Get().(*zstd.Decoder); ok {
		return d, nil
	}
	return newDecoder(nil)
}

func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return d, nil
}

type countingReaderAt struct {
	ra io.ReaderAt
	n  atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ra.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

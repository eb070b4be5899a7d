package layout

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// seekable is a zstd archive with a seek table: the file, its validated
// table, and a pool of decoders shared by every stream over it.
type seekable struct {
	ra    *countingReaderAt
	table *seekTable
	decs  sync.Pool
	reads sync.Pool // *bufio.Reader of frameReadSize
}

func openSeekable(ra io.ReaderAt, size int64) (*seekable, error) {
	cr, ok := ra.(*countingReaderAt)
	if !ok {
		cr = &countingReaderAt{ra: ra}
	}
	t, err := readSeekTable(cr, size)
	if err != nil {
		return nil, err
	}
	return &seekable{ra: cr, table: t}, nil
}

// size is the length of the decompressed tar stream.
func (z *seekable) size() int64 { return z.table.doff[len(z.table.frames)] }

// compressedOffset is the file offset of the frame holding tar offset off.
func (z *seekable) compressedOffset(off int64) int64 {
	return z.table.coff[z.table.frameAt(off)]
}

// stream reads the decompressed bytes [off, end) of the archive.
func (z *seekable) stream(off, end int64, name string) *frameStream {
	return &frameStream{z: z, name: name, pos: off, end: end, frame: -1}
}

// frameStream is an io.ReadSeeker over part of the decompressed stream,
// decoding frame after frame with a pooled, goroutine-free decoder. Seek
// is lazy: only a Read decodes, from the start of the frame that holds the
// position, and a forward move inside the frame being decoded continues
// from where the decoder stands. A reader that moves forward (the tar
// listing, an entry's content) so decodes each frame at most once. Every
// frame must decode to exactly the size its table entry gives.
type frameStream struct {
	z         *seekable
	name      string
	pos, end  int64
	dec       *zstd.Decoder
	frame     int           // the frame dec is in; -1 for none
	dpos      int64         // the tar offset of dec's next byte
	br        *bufio.Reader // over the frame's compressed bytes
	err       error
	closeOnce sync.Once
}

func (f *frameStream) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += f.pos
	default:
		return f.pos, errors.New("frame stream: seek from the end is not supported")
	}
	if off < 0 {
		return f.pos, errors.New("frame stream: negative position")
	}
	f.pos = off
	return off, nil
}

func (f *frameStream) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.pos >= f.end {
		return 0, io.EOF
	}
	n, err := f.read(p)
	if err != nil {
		f.err = err
	}
	return n, err
}

func (f *frameStream) read(p []byte) (int, error) {
	t := f.z.table
	i := t.frameAt(f.pos)
	if i >= len(t.frames) {
		return 0, fmt.Errorf("read %s: the archive's frames end %d bytes early: the file is damaged", f.name, f.end-f.pos)
	}
	if f.frame != i || f.dpos > f.pos {
		if err := f.start(i); err != nil {
			return 0, err
		}
	}
	if f.dpos < f.pos {
		n, err := io.CopyN(io.Discard, f.dec, f.pos-f.dpos)
		f.dpos += n
		if err != nil {
			return 0, f.frameErr(err)
		}
	}
	frameEnd := t.doff[i+1]
	p = p[:min(int64(len(p)), frameEnd-f.pos, f.end-f.pos)]
	n, err := io.ReadFull(f.dec, p)
	f.pos += int64(n)
	f.dpos += int64(n)
	if err != nil {
		return n, f.frameErr(err)
	}
	if f.dpos == frameEnd {
		// The frame must end exactly where the table says.
		var one [1]byte
		if k, err := f.dec.Read(one[:]); k > 0 || !errors.Is(err, io.EOF) {
			if err == nil || errors.Is(err, io.EOF) {
				err = errFrameSize
			}
			return n, f.frameErr(err)
		}
		f.frame = -1
	}
	return n, nil
}

// start positions the decoder at the beginning of frame i.
func (f *frameStream) start(i int) error {
	t := f.z.table
	if f.dec == nil {
		d, err := f.z.decoder()
		if err != nil {
			return err
		}
		f.dec = d
	}
	f.frame, f.dpos = i, t.doff[i]
	// The frame's compressed bytes in large reads: the decoder would
	// otherwise ask for them a few KiB at a time, a system call each. Not
	// the whole frame at once: bundle serve has dozens of streams open,
	// and a frame is 4 MiB.
	if f.br == nil {
		f.br = f.z.reader()
	}
	f.br.Reset(io.NewSectionReader(f.z.ra, t.coff[i], int64(t.frames[i].csize)))
	if err := f.dec.Reset(f.br); err != nil {
		return f.frameErr(err)
	}
	return nil
}

func (f *frameStream) frameErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = errFrameSize
	}
	i := f.frame
	if i < 0 {
		i = f.z.table.frameAt(f.pos)
	}
	f.frame = -1
	t := f.z.table
	return &damagedFrameError{what: f.name, frame: i, off: t.coff[i], f: t.frames[i], err: err}
}

// Close returns the decoder to the pool.
func (f *frameStream) Close() error {
	f.closeOnce.Do(func() {
		if f.dec != nil {
			_ = f.dec.Reset(nil)
			f.z.decs.Put(f.dec)
			f.dec = nil
		}
		if f.br != nil {
			f.br.Reset(nil)
			f.z.reads.Put(f.br)
			f.br = nil
		}
		if f.err == nil {
			f.err = errors.New("read " + f.name + ": reader is closed")
		}
	})
	return nil
}

// damagedFrameError names the zstd frame where reading failed.
type damagedFrameError struct {
	what  string
	frame int
	off   int64
	f     seekFrame
	err   error
}

func (e *damagedFrameError) Error() string {
	return fmt.Sprintf("read %s: zstd frame %d at offset %d (%d bytes, %d decompressed): %v; the archive is damaged: copy it again and check it against its .sha256",
		e.what, e.frame, e.off, e.f.csize, e.f.dsize, e.err)
}

func (e *damagedFrameError) Unwrap() error { return e.err }

// frameReadSize is how much of a frame one read of the file asks for.
const frameReadSize = 256 << 10

// reader takes a buffered reader from the pool.
func (z *seekable) reader() *bufio.Reader {
	if br, ok := z.reads.Get().(*bufio.Reader); ok {
		return br
	}
	return bufio.NewReaderSize(nil, frameReadSize)
}

// decoder takes a decoder from the pool. One without goroutines: readers
// may be dropped without Close, and frames are decoded one at a time.
func (z *seekable) decoder() (*zstd.Decoder, error) {
	if d, ok := z.decs.Get().(*zstd.Decoder); ok {
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

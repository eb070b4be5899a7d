package layout

// The zstd seekable format (facebook/zstd contrib/seekable_format/
// zstd_seekable_compression_format.md) is written and read by hand here.
// The Go implementations that exist (SaveTheRbtz/zstd-seekable-format-go
// being the most used) are small single-maintainer projects outside our
// chosen libraries, and neither lets the writer cut frames at tar entry
// boundaries while compressing on an ordered worker pool. Each frame is an
// ordinary, independent zstd frame made by klauspost/compress; only the
// seek table (a skippable frame at the end) is our own code.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

const (
	seekTableMagic   = 0x184D2A5E // skippable frame holding the seek table
	seekableMagic    = 0x8F92EAB1 // last four bytes of a seekable archive
	seekFooterSize   = 9          // frame count, descriptor, magic
	skippableHdrSize = 8          // magic, frame size
	// maxSeekFrames is ZSTD_SEEKABLE_MAXFRAMES from the reference code.
	maxSeekFrames = 0x8000000
)

// seekFrame is one entry of the seek table.
type seekFrame struct {
	csize, dsize uint32
}

// frameJob is one frame on its way through the worker pool.
type frameJob struct {
	in   *[]byte
	out  *[]byte
	enc  *zstd.Encoder
	done chan struct{}
}

// seekableSink cuts the tar stream into frames, compresses them on a pool
// of workers and writes them in order, then the seek table.
type seekableSink struct {
	out   io.Writer
	chunk int
	// enc compresses tar headers and ordinary content; fast compresses
	// precompressed content at SpeedFastest, which skips
	// incompressible blocks about as quickly as storing them.
	enc, fast *zstd.Encoder
	cur       *zstd.Encoder // the encoder for the frame being filled
	buf       *[]byte       // the frame being filled, nil if none

	inPool, outPool sync.Pool
	work            chan *frameJob // to the workers
	order           chan *frameJob // to the writer, in stream order
	workers         sync.WaitGroup
	writerDone      chan struct{}
	err             atomic.Pointer[error] // first failure of the writer goroutine
	frames          []seekFrame           // owned by the writer goroutine until writerDone
	stopped         bool
}

func newSeekableSink(out io.Writer, opts WriterOptions) (*seekableSink, error) {
	// Every frame is compressed on its own, so a window larger than the
	// chunk buys nothing and costs memory in every encoder.
	window := windowFor(opts.ChunkSize)
	newEnc := func(l zstd.EncoderLevel) (*zstd.Encoder, error) {
		return zstd.NewWriter(nil,
			zstd.WithEncoderLevel(l),
			zstd.WithEncoderConcurrency(opts.Concurrency),
			zstd.WithWindowSize(window),
			zstd.WithLowerEncoderMem(true),
			zstd.WithEncoderCRC(true))
	}
	enc, err := newEnc(zstd.EncoderLevelFromZstd(opts.Level))
	if err != nil {
		return nil, fmt.Errorf("zstd level %d: %w", opts.Level, err)
	}
	fast, err := newEnc(zstd.SpeedFastest)
	if err != nil {
		return nil, err
	}
	s := &seekableSink{
		out:   out,
		chunk: opts.ChunkSize,
		enc:   enc,
		fast:  fast,
		cur:   enc,
		// Frames in flight: one per worker, one waiting to be written and
		// one in the order channel; each costs a chunk in and a chunk out.
		// Measured: a deeper queue bought no speed and ~25 MiB of RSS.
		work:       make(chan *frameJob),
		order:      make(chan *frameJob, 1),
		writerDone: make(chan struct{}),
	}
	s.inPool.New = func() any { b := make([]byte, 0, s.chunk); return &b }
	s.outPool.New = func() any { b := make([]byte, 0, enc.MaxEncodedSize(s.chunk)); return &b }
	for range opts.Concurrency {
		s.workers.Add(1)
		go s.compress()
	}
	go s.writeFrames()
	return s, nil
}

// windowFor is the largest power of two not above chunk, within what zstd
// accepts.
func windowFor(chunk int) int {
	w := zstd.MinWindowSize
	for w*2 <= chunk && w*2 <= zstd.MaxWindowSize {
		w *= 2
	}
	return w
}

func (s *seekableSink) compress() {
	defer s.workers.Done()
	for j := range s.work {
		*j.out = j.enc.EncodeAll(*j.in, (*j.out)[:0])
		close(j.done)
	}
}

// writeFrames writes frames in the order they were cut. After a write
// error it keeps draining so that the producer never blocks.
func (s *seekableSink) writeFrames() {
	defer close(s.writerDone)
	for j := range s.order {
		<-j.done
		if s.err.Load() == nil {
			if _, err := s.out.Write(*j.out); err != nil {
				err = fmt.Errorf("write zstd frame %d: %w", len(s.frames), err)
				s.err.Store(&err)
			}
			s.frames = append(s.frames, seekFrame{csize: uint32(len(*j.out)), dsize: uint32(len(*j.in))})
		}
		*j.in = (*j.in)[:0]
		s.inPool.Put(j.in)
		s.outPool.Put(j.out)
	}
}

func (s *seekableSink) failed() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *seekableSink) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := s.failed(); err != nil {
			return written, err
		}
		if s.buf == nil {
			s.buf = s.inPool.Get().(*[]byte)
		}
		b := *s.buf
		n := copy(b[len(b):s.chunk], p)
		*s.buf = b[:len(b)+n]
		p = p[n:]
		written += n
		if len(*s.buf) == s.chunk {
			s.cut()
		}
	}
	return written, nil
}

// cut ends the frame being filled. At most about Concurrency+3 frames are
// in flight: cut blocks on the channels when the workers fall behind.
func (s *seekableSink) cut() {
	if s.buf == nil || len(*s.buf) == 0 {
		return
	}
	j := &frameJob{in: s.buf, out: s.outPool.Get().(*[]byte), enc: s.cur, done: make(chan struct{})}
	s.buf = nil
	s.order <- j
	s.work <- j
}

// beginHeader gives each tar header a small frame of its own, so that a
// reader can list the archive by decompressing only those frames.
func (s *seekableSink) beginHeader(bool) error {
	s.cut()
	s.cur = s.enc
	return s.failed()
}

func (s *seekableSink) beginContent(precompressed bool) error {
	s.cut()
	s.cur = s.enc
	if precompressed {
		s.cur = s.fast
	}
	return s.failed()
}

func (s *seekableSink) beginTail(precompressed bool) error {
	return s.beginContent(precompressed)
}

func (s *seekableSink) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	close(s.work)
	close(s.order)
	s.workers.Wait()
	<-s.writerDone
	_ = s.enc.Close()
	_ = s.fast.Close()
}

func (s *seekableSink) close() error {
	s.cut()
	s.stop()
	if err := s.failed(); err != nil {
		return err
	}
	table, err := appendSeekTable(nil, s.frames)
	if err != nil {
		return err
	}
	if _, err := s.out.Write(table); err != nil {
		return fmt.Errorf("write zstd seek table: %w", err)
	}
	return nil
}

func (s *seekableSink) abort() {
	if s.buf != nil {
		s.inPool.Put(s.buf)
		s.buf = nil
	}
	s.stop()
}

// appendSeekTable encodes the seek table as a skippable frame, without
// per-frame checksums: every frame carries zstd's own content checksum.
func appendSeekTable(b []byte, frames []seekFrame) ([]byte, error) {
	if len(frames) > maxSeekFrames {
		return nil, fmt.Errorf("zstd seek table: %d frames, the format allows %d; use a larger chunk size", len(frames), maxSeekFrames)
	}
	size := len(frames)*8 + seekFooterSize
	b = binary.LittleEndian.AppendUint32(b, seekTableMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	for _, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, f.csize)
		b = binary.LittleEndian.AppendUint32(b, f.dsize)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frames)))
	b = append(b, 0) // descriptor: no checksums
	b = binary.LittleEndian.AppendUint32(b, seekableMagic)
	return b, nil
}

// seekTable is a parsed, validated seek table with the offsets of every
// frame in the file (coff) and in the decompressed stream (doff).
type seekTable struct {
	frames     []seekFrame
	coff, doff []int64 // len(frames)+1 entries; the last is the total
}

// errNoSeekTable means the zstd stream lacks a seek table: read it as a stream.
var errNoSeekTable = fmt.Errorf("zstd archive has no seek table: %w", ErrNotSeekable)

// readSeekTable reads and validates the seek table at the end of ra.
// Its checks keep a hostile table from causing large allocations or
// offsets outside the file: the frame count is bounded by the file size,
// compressed sizes must add up to exactly the data before the table, and
// no sum may overflow.
func readSeekTable(ra io.ReaderAt, size int64) (*seekTable, error) {
	if size < skippableHdrSize+seekFooterSize {
		return nil, errNoSeekTable
	}
	var foot [seekFooterSize]byte
	if _, err := ra.ReadAt(foot[:], size-seekFooterSize); err != nil {
		return nil, fmt.Errorf("read zstd seek table footer at offset %d: %w", size-seekFooterSize, err)
	}
	if binary.LittleEndian.Uint32(foot[5:]) != seekableMagic {
		return nil, errNoSeekTable
	}
	n := int64(binary.LittleEndian.Uint32(foot[:4]))
	desc := foot[4]
	if desc&0x7c != 0 {
		return nil, fmt.Errorf("zstd seek table: reserved descriptor bits set (0x%02x): the archive is damaged", desc)
	}
	entrySize := int64(8)
	if desc&0x80 != 0 {
		entrySize = 12
	}
	tableSize := n*entrySize + seekFooterSize
	if n > maxSeekFrames || tableSize+skippableHdrSize > size {
		return nil, fmt.Errorf("zstd seek table: %d frames do not fit a %d-byte file: the archive is damaged or truncated", n, size)
	}
	start := size - tableSize - skippableHdrSize
	raw := make([]byte, tableSize+skippableHdrSize-seekFooterSize)
	if _, err := ra.ReadAt(raw, start); err != nil {
		return nil, fmt.Errorf("read zstd seek table at offset %d: %w", start, err)
	}
	if binary.LittleEndian.Uint32(raw) != seekTableMagic || int64(binary.LittleEndian.Uint32(raw[4:])) != tableSize {
		return nil, fmt.Errorf("zstd seek table at offset %d: bad skippable frame header: the archive is damaged", start)
	}
	t := &seekTable{
		frames: make([]seekFrame, n),
		coff:   make([]int64, n+1),
		doff:   make([]int64, n+1),
	}
	p := raw[skippableHdrSize:]
	for i := range t.frames {
		f := seekFrame{csize: binary.LittleEndian.Uint32(p), dsize: binary.LittleEndian.Uint32(p[4:])}
		p = p[entrySize:]
		if f.csize == 0 {
			return nil, fmt.Errorf("zstd seek table: frame %d has no bytes: the archive is damaged", i)
		}
		t.frames[i] = f
		// Sums of at most 2^27 values below 2^32 cannot overflow int64.
		t.coff[i+1] = t.coff[i] + int64(f.csize)
		t.doff[i+1] = t.doff[i] + int64(f.dsize)
	}
	if t.coff[n] != start {
		return nil, fmt.Errorf("zstd seek table: frames add up to %d bytes but the table starts at offset %d: the archive is damaged", t.coff[n], start)
	}
	return t, nil
}

// frameAt returns the index of the frame holding decompressed offset off,
// or len(frames) when off is at or past the end.
func (t *seekTable) frameAt(off int64) int {
	lo, hi := 0, len(t.frames)
	for lo < hi { // first frame whose end is past off
		m := int(uint(lo+hi) >> 1)
		if t.doff[m+1] <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// errFrameSize reports a frame that decompressed to a size other than the table's.
var errFrameSize = errors.New("frame size differs from the seek table")

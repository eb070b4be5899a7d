package pack

import (
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// sinkBufSize is the size of each write to the archive file.
const sinkBufSize = 1 << 20

// sinkBlocks is how many blocks are in flight between the archive writer
// and the two goroutines below.
const sinkBlocks = 4

// asyncSink buffers the archive stream into large blocks and hands each to
// two goroutines, one hashing it and one writing it, so that the archive's
// checksum and the write system calls run beside each other and beside the
// fetching and copying, instead of one after the other on one core
// (measured: hashing and writing in one goroutine made it the slowest part
// of an uncompressed export). Blocks are hashed and written in order.
type asyncSink struct {
	w        io.Writer
	h        hash.Hash
	buf      *block
	toHash   chan *block
	toWrite  chan *block
	free     chan *block
	finished sync.WaitGroup
	err      atomic.Pointer[error] // the file's first failure
	n        int64
}

type block struct {
	b    []byte
	refs atomic.Int32
}

func newAsyncSink(w io.Writer, h hash.Hash) *asyncSink {
	s := &asyncSink{
		w:       w,
		h:       h,
		toHash:  make(chan *block, sinkBlocks),
		toWrite: make(chan *block, sinkBlocks),
		free:    make(chan *block, sinkBlocks),
	}
	for range sinkBlocks - 1 {
		s.free <- &block{b: make([]byte, 0, sinkBufSize)}
	}
	s.buf = &block{b: make([]byte, 0, sinkBufSize)}
	s.finished.Add(2)
	go s.run(s.toHash, func(b []byte) {
		if s.h != nil { // nil for parts, which hash themselves
			s.h.Write(b)
		}
	})
	go s.run(s.toWrite, func(b []byte) {
		if s.err.Load() != nil {
			return
		}
		if _, err := s.w.Write(b); err != nil {
			s.err.Store(&err)
		}
	})
	return s
}

func (s *asyncSink) run(in <-chan *block, do func([]byte)) {
	defer s.finished.Done()
	for b := range in {
		do(b.b)
		if b.refs.Add(-1) == 0 {
			b.b = b.b[:0]
			s.free <- b
		}
	}
}

// Write copies p into the current block. A failure of the file shows at
// the next block handed over, and at Close.
func (s *asyncSink) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		b := s.buf.b
		k := copy(b[len(b):cap(b)], p)
		s.buf.b = b[:len(b)+k]
		p = p[k:]
		written += k
		if len(s.buf.b) == cap(s.buf.b) {
			if err := s.handOver(); err != nil {
				s.n += int64(written)
				return written, err
			}
		}
	}
	s.n += int64(written)
	return written, nil
}

func (s *asyncSink) send() {
	s.buf.refs.Store(2)
	s.toHash <- s.buf
	s.toWrite <- s.buf
}

func (s *asyncSink) handOver() error {
	s.send()
	s.buf = <-s.free
	return s.failed()
}

func (s *asyncSink) failed() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close writes what is buffered, stops the goroutines and returns the
// first write error. It must be called once, also after a failure.
func (s *asyncSink) Close() error {
	if len(s.buf.b) > 0 {
		s.send()
	}
	s.buf = nil
	close(s.toHash)
	close(s.toWrite)
	s.finished.Wait()
	return s.failed()
}

package pack

import (
	"hash"
	"io"
	"sync/atomic"
)

// sinkBufSize is the size of each write to the archive file.
const sinkBufSize = 1 << 20

// asyncSink buffers the archive stream into large blocks and hands them to
// a goroutine that hashes and writes them, so the checksum of the archive
// and the write system calls run beside the fetching and copying instead of
// after each of them. Blocks are written in order; a few are in flight.
type asyncSink struct {
	w    io.Writer
	h    hash.Hash
	buf  []byte
	full chan []byte
	free chan []byte
	done chan struct{}
	err  atomic.Pointer[error] // the writer goroutine's first failure
	n    int64
}

func newAsyncSink(w io.Writer, h hash.Hash) *asyncSink {
	const blocks = 3
	s := &asyncSink{
		w:    w,
		h:    h,
		full: make(chan []byte, blocks),
		free: make(chan []byte, blocks),
		done: make(chan struct{}),
	}
	for range blocks - 1 {
		s.free <- make([]byte, 0, sinkBufSize)
	}
	s.buf = make([]byte, 0, sinkBufSize)
	go s.run()
	return s
}

func (s *asyncSink) run() {
	defer close(s.done)
	for b := range s.full {
		if s.err.Load() == nil {
			s.h.Write(b)
			if _, err := s.w.Write(b); err != nil {
				s.err.Store(&err)
			}
		}
		s.free <- b[:0]
	}
}

// Write copies p into the current block. A failure of the file shows at
// the next block handed over, and at Close.
func (s *asyncSink) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		written += k
		if len(s.buf) == cap(s.buf) {
			if err := s.handOver(); err != nil {
				return written, err
			}
		}
	}
	s.n += int64(written)
	return written, nil
}

func (s *asyncSink) handOver() error {
	s.full <- s.buf
	s.buf = <-s.free
	return s.failed()
}

func (s *asyncSink) failed() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close writes what is buffered, stops the goroutine and returns the first
// write error. It must be called once, also after a failure.
func (s *asyncSink) Close() error {
	if len(s.buf) > 0 {
		s.full <- s.buf
		s.buf = nil
	}
	close(s.full)
	<-s.done
	return s.failed()
}

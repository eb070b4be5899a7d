package verify

import (
	"hash"
	"sync"
)

// asyncHash feeds a hash on its own goroutine, so that the sidecar's
// whole-file hash runs on another core beside the blob hashes instead of
// doubling the time of the pass. Write copies p: the caller reuses it.
type asyncHash struct {
	h     hash.Hash
	full  chan []byte
	free  chan []byte
	done  chan struct{}
	close sync.Once
}

const asyncBuffers = 4

func newAsyncHash(h hash.Hash, bufSize int) *asyncHash {
	a := &asyncHash{h: h, full: make(chan []byte, asyncBuffers), free: make(chan []byte, asyncBuffers), done: make(chan struct{})}
	for range asyncBuffers {
		a.free <- make([]byte, bufSize)
	}
	go a.run()
	return a
}

func (a *asyncHash) run() {
	defer close(a.done)
	for b := range a.full {
		a.h.Write(b)
		a.free <- b[:cap(b)]
	}
}

func (a *asyncHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := <-a.free
		c := copy(b, p)
		a.full <- b[:c]
		p = p[c:]
	}
	return n, nil
}

// Sum waits for what was written to be hashed. The hash takes no more
// writes after it; stop without Sum ends the goroutine.
func (a *asyncHash) Sum() []byte {
	a.stop()
	<-a.done
	return a.h.Sum(nil)
}

func (a *asyncHash) stop() { a.close.Do(func() { close(a.full) }) }

package parts

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/reedsolomon"
)

// MaxShards is how many shards, data and parity, one Reed-Solomon code
// over GF(2^8) covers; the library's larger codes cannot add one shard at a
// time, which a stream needs.
const MaxShards = 256

// chunkSize is how much of a part parity works on at once: memory stays at
// a few chunks whatever the part size.
const chunkSize = 1 << 20

func newCode(shards, parity int) (reedsolomon.Encoder, error) {
	enc, err := reedsolomon.New(shards, parity)
	if err != nil {
		return nil, fmt.Errorf("parity code over %d data and %d parity parts: %w", shards, parity, err)
	}
	return enc, nil
}

// parityChunk is data part idx's bytes at off, for the accumulator.
type parityChunk struct {
	idx  int
	off  int64
	data []byte
}

// accumulator adds each data part into the parity files as the stream
// goes: parity is linear, so part i's contribution is added on its own,
// read-modify-write on the parity file (usually still in the page cache).
// It runs on its own goroutine so that the export does not wait for it.
type accumulator struct {
	enc   reedsolomon.Encoder
	files []*os.File
	in    chan parityChunk
	free  chan []byte
	done  chan error
}

func newAccumulator(enc reedsolomon.Encoder, files []*os.File) *accumulator {
	a := &accumulator{enc: enc, files: files, in: make(chan parityChunk, 2), free: make(chan []byte, 4), done: make(chan error, 1)}
	for range 4 {
		a.free <- make([]byte, chunkSize)
	}
	go func() { a.done <- a.run() }()
	return a
}

// buffer returns an empty chunk buffer to fill.
func (a *accumulator) buffer() []byte { return (<-a.free)[:0] }

// add hands a filled chunk over; the accumulator gives the buffer back.
func (a *accumulator) add(c parityChunk) { a.in <- c }

// finish waits for every chunk to be added.
func (a *accumulator) finish() error {
	close(a.in)
	return <-a.done
}

func (a *accumulator) run() error {
	par := make([][]byte, len(a.files))
	for j := range par {
		par[j] = make([]byte, chunkSize)
	}
	var first error
	for c := range a.in {
		if first == nil {
			first = a.addChunk(c, par)
		}
		a.free <- c.data
	}
	return first
}

func (a *accumulator) addChunk(c parityChunk, par [][]byte) error {
	n := len(c.data)
	view := make([][]byte, len(par))
	for j, f := range a.files {
		view[j] = par[j][:n]
		if c.idx == 0 {
			clear(view[j])
			continue
		}
		// Part 0 is the longest, so every parity file already covers the
		// range of any later part.
		if _, err := f.ReadAt(view[j], c.off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading parity part %s: %w", f.Name(), err)
		}
	}
	if err := a.enc.EncodeIdx(c.data, c.idx, view); err != nil {
		return fmt.Errorf("parity of data part %d at %d: %w", c.idx, c.off, err)
	}
	for j, f := range a.files {
		if _, err := f.WriteAt(view[j], c.off); err != nil {
			return fmt.Errorf("writing parity part %s: %w", f.Name(), err)
		}
	}
	return nil
}

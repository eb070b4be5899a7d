package parts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/klauspost/reedsolomon"
)

// MaxShards is how many parts, data and parity, one Reed-Solomon code
// over GF(2^8) covers.
const MaxShards = 256

// chunkBudget bounds the memory parity work takes: a chunk of every part
// at once.
const chunkBudget = 64 << 20

// chunkFor is the chunk size for a code over n parts: at most 1 MiB, less
// when many parts share the budget, a multiple of 64 bytes.
func chunkFor(n int) int {
	c := chunkBudget / max(n, 1)
	return max(64<<10, min(1<<20, c&^63))
}

func newCode(shards, parity int) (reedsolomon.Encoder, error) {
	enc, err := reedsolomon.New(shards, parity)
	if err != nil {
		return nil, fmt.Errorf("parity code over %d data and %d parity parts: %w", shards, parity, err)
	}
	return enc, nil
}

// writeParity computes the parity parts of the data parts just written:
// one pass over them, a chunk of each at a time (they are usually still in
// the page cache), each parity part hashed as it is written.
func writeParity(l *Layout, data []*os.File, parity []*os.File) ([]string, error) {
	st := make([]PartStatus, 0, len(data)+len(parity))
	src := make([]io.ReaderAt, 0, len(data)+len(parity))
	dst := make([]io.WriterAt, len(data)+len(parity))
	for i, f := range data {
		st = append(st, PartStatus{Name: f.Name(), Size: l.DataSize(i)})
		src = append(src, f)
	}
	hashers := make([]*hashingWriter, len(parity))
	for j, f := range parity {
		st = append(st, PartStatus{Name: f.Name(), Parity: true, Size: l.ShardSize()})
		src = append(src, nil)
		hashers[j] = &hashingWriter{f: f, h: sha256.New()}
		dst[len(data)+j] = hashers[j]
	}
	if err := rebuild(context.Background(), l, st, src, dst); err != nil {
		return nil, err
	}
	sums := make([]string, len(parity))
	for j, h := range hashers {
		if h.off != l.ShardSize() {
			return nil, fmt.Errorf("parity part %s: wrote %d bytes, want %d", h.f.Name(), h.off, l.ShardSize())
		}
		sums[j] = hex.EncodeToString(h.h.Sum(nil))
	}
	return sums, nil
}

// hashingWriter hashes a part written front to back.
type hashingWriter struct {
	f   *os.File
	h   hash.Hash
	off int64
}

func (w *hashingWriter) WriteAt(p []byte, off int64) (int, error) {
	if off != w.off {
		return 0, fmt.Errorf("parity part %s written out of order at %d, expected %d", w.f.Name(), off, w.off)
	}
	n, err := w.f.WriteAt(p, off)
	w.h.Write(p[:n])
	w.off += int64(n)
	return n, err
}

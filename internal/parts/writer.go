package parts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
)

// Options say how to cut an archive.
type Options struct {
	PartSize int64 // bytes per data part; must be > 0
	Parity   int   // parity parts; 0 for none
	// MaxParts is the most data parts the parity code covers; 0 means as
	// many as a code allows (256 - Parity). A smaller number that still
	// covers the archive makes rebuilding faster.
	MaxParts int
}

// Writer cuts what is written to it into base.000, base.001, … as the
// bytes come, each hashed on the way and added into the parity parts. Every
// file is written under a .partial name; Commit renames them all and writes
// base.sha256 last, Abort removes them.
type Writer struct {
	base   string
	opts   Options
	shards int

	cur     *os.File
	curHash hash.Hash
	curN    int64
	total   int64
	sums    []Sum
	created []string // partial names, to rename or remove

	acc     *accumulator
	parity  []*os.File
	pending []byte // the chunk of the current part not yet given to parity
	pendOff int64
	err     error
}

// Create starts writing the parts of base.
func Create(base string, opts Options) (*Writer, error) {
	if opts.PartSize <= 0 {
		return nil, fmt.Errorf("part size %d: want a positive size", opts.PartSize)
	}
	if opts.Parity < 0 || opts.Parity >= MaxShards {
		return nil, fmt.Errorf("%d parity parts: want 0 to %d", opts.Parity, MaxShards-1)
	}
	w := &Writer{base: base, opts: opts}
	if opts.Parity == 0 {
		return w, nil
	}
	w.shards = MaxShards - opts.Parity
	if opts.MaxParts > 0 && opts.MaxParts < w.shards {
		w.shards = opts.MaxParts
	}
	enc, err := newCode(w.shards, opts.Parity)
	if err != nil {
		return nil, err
	}
	for j := range opts.Parity {
		f, err := w.create(ParityName(base, j))
		if err != nil {
			w.Abort()
			return nil, err
		}
		w.parity = append(w.parity, f)
	}
	w.acc = newAccumulator(enc, w.parity)
	return w, nil
}

func (w *Writer) create(name string) (*os.File, error) {
	p := name + partialSuffix
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating part %s: %w: check that its directory exists and is writable", p, err)
	}
	w.created = append(w.created, name)
	return f, nil
}

// Write cuts p across parts.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if w.cur == nil {
			if w.err = w.nextPart(); w.err != nil {
				return written, w.err
			}
		}
		n := int(min(int64(len(p)), w.opts.PartSize-w.curN))
		if _, err := w.cur.Write(p[:n]); err != nil {
			w.err = fmt.Errorf("writing part %s: %w: check the space left on its disk", w.cur.Name(), err)
			return written, w.err
		}
		w.curHash.Write(p[:n])
		w.feedParity(p[:n])
		w.curN += int64(n)
		w.total += int64(n)
		written += n
		p = p[n:]
		if w.curN == w.opts.PartSize {
			if w.err = w.endPart(); w.err != nil {
				return written, w.err
			}
		}
	}
	return written, nil
}

func (w *Writer) nextPart() error {
	if w.acc != nil && len(w.sums) >= w.shards {
		return fmt.Errorf("the archive needs more than %d parts, the most %d parity parts can cover: use a larger --split-size", w.shards, w.opts.Parity)
	}
	f, err := w.create(DataName(w.base, len(w.sums)))
	if err != nil {
		return err
	}
	w.cur, w.curHash, w.curN = f, sha256.New(), 0
	if w.acc != nil {
		w.pending, w.pendOff = w.acc.buffer(), 0
	}
	return nil
}

// feedParity gathers the current part's bytes into chunks for parity.
func (w *Writer) feedParity(p []byte) {
	if w.acc == nil {
		return
	}
	for len(p) > 0 {
		n := min(len(p), chunkSize-len(w.pending))
		w.pending = append(w.pending, p[:n]...)
		p = p[n:]
		if len(w.pending) == chunkSize {
			w.flushParity(true)
		}
	}
}

func (w *Writer) flushParity(more bool) {
	if len(w.pending) > 0 {
		w.acc.add(parityChunk{idx: len(w.sums), off: w.pendOff, data: w.pending})
		w.pendOff += int64(len(w.pending))
	} else if w.pending != nil {
		w.acc.free <- w.pending
	}
	w.pending = nil
	if more {
		w.pending = w.acc.buffer()
	}
}

func (w *Writer) endPart() error {
	f := w.cur
	w.cur = nil
	if w.acc != nil {
		w.flushParity(false)
	}
	w.sums = append(w.sums, Sum{Name: filepath.Base(DataName(w.base, len(w.sums))), SHA256: hex.EncodeToString(w.curHash.Sum(nil))})
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing part %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing part %s: %w", f.Name(), err)
	}
	return nil
}

// Commit ends the last part, finishes parity, renames every part to its
// final name and writes base.sha256. It returns the sidecar written.
func (w *Writer) Commit() (*Sidecar, error) {
	sc, err := w.commit()
	if err != nil {
		w.Abort()
		return nil, err
	}
	return sc, nil
}

func (w *Writer) commit() (*Sidecar, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.cur == nil && len(w.sums) == 0 {
		// An empty stream is still one (empty) part.
		if err := w.nextPart(); err != nil {
			return nil, err
		}
	}
	if w.cur != nil {
		if err := w.endPart(); err != nil {
			return nil, err
		}
	}
	l := &Layout{Size: w.total, PartSize: w.opts.PartSize, Data: len(w.sums), Parity: w.opts.Parity, Shards: w.shards}
	sc := &Sidecar{Layout: l, Sums: append([]Sum(nil), w.sums...)}
	if w.acc != nil {
		err := w.acc.finish()
		w.acc = nil
		if err != nil {
			return nil, err
		}
		for _, f := range w.parity {
			sum, err := hashFile(f)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("finishing parity part %s: %w", f.Name(), err)
			}
			sc.Sums = append(sc.Sums, Sum{Name: filepath.Base(trimPartial(f.Name())), SHA256: sum})
		}
		w.parity = nil
	}
	for _, name := range w.created {
		if err := os.Rename(name+partialSuffix, name); err != nil {
			return nil, fmt.Errorf("renaming part %s: %w", name, err)
		}
	}
	if err := WriteFileAtomic(SidecarName(w.base), sc.Bytes()); err != nil {
		return nil, err
	}
	syncDir(filepath.Dir(w.base))
	return sc, nil
}

// Abort removes every file written, under either name.
func (w *Writer) Abort() {
	if w.cur != nil {
		w.cur.Close()
		w.cur = nil
	}
	if w.acc != nil {
		_ = w.acc.finish()
		w.acc = nil
	}
	for _, f := range w.parity {
		f.Close()
	}
	w.parity = nil
	for _, name := range w.created {
		os.Remove(name + partialSuffix)
		os.Remove(name)
	}
	w.created = nil
	if w.err == nil {
		w.err = errors.New("parts writer aborted")
	}
}

func trimPartial(name string) string { return name[:len(name)-len(partialSuffix)] }

// WriteFileAtomic writes data to name through name.partial and a rename.
func WriteFileAtomic(name string, data []byte) error {
	p := name + partialSuffix
	if err := os.WriteFile(p, data, 0o644); err != nil {
		os.Remove(p)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(p, name); err != nil {
		os.Remove(p)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// syncDir makes the renames durable; a failure only weakens durability.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

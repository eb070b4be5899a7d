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
}

// Writer cuts what is written to it into base.000, base.001, … as the
// bytes come, each hashed on the way. Every file is written under a
// .partial name; Commit computes the parity parts from the data parts just
// written, renames them all and writes base.sha256 last; Abort removes
// them.
//
// Parity is computed after the stream and not beside it: a part's share
// of the parity can only be added to parity parts as large as a part,
// which means reading and rewriting them for every part (measured: the
// parity files' read-modify-write made an export half again as slow),
// where one pass over the parts at the end reads each byte once, mostly
// from the page cache.
type Writer struct {
	base string
	opts Options

	cur     *os.File
	curHash hash.Hash
	curN    int64
	total   int64
	sums    []Sum
	created []string // final names, written as name.partial until Commit
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
	return &Writer{base: base, opts: opts}, nil
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
	if limit := MaxShards - w.opts.Parity; w.opts.Parity > 0 && len(w.sums) >= limit {
		return fmt.Errorf("the archive needs more than %d parts, the most %d parity parts can cover: use a larger --split-size", limit, w.opts.Parity)
	}
	f, err := w.create(DataName(w.base, len(w.sums)))
	if err != nil {
		return err
	}
	w.cur, w.curHash, w.curN = f, sha256.New(), 0
	return nil
}

func (w *Writer) endPart() error {
	f := w.cur
	w.cur = nil
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

// Commit ends the last part, writes the parity parts, renames every part
// to its final name and writes base.sha256. It returns the sidecar
// written. On failure nothing is left under a final name.
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
	l := &Layout{Size: w.total, PartSize: w.opts.PartSize, Data: len(w.sums), Parity: w.opts.Parity}
	sc := &Sidecar{Layout: l, Sums: append([]Sum(nil), w.sums...)}
	if l.Parity > 0 {
		l.Shards = l.Data
		sums, err := w.parity(l)
		if err != nil {
			return nil, err
		}
		for j, s := range sums {
			sc.Sums = append(sc.Sums, Sum{Name: filepath.Base(ParityName(w.base, j)), SHA256: s})
		}
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

// parity writes the parity parts and returns their sums.
func (w *Writer) parity(l *Layout) ([]string, error) {
	var data, parity []*os.File
	defer func() {
		for _, f := range append(data, parity...) {
			f.Close()
		}
	}()
	for i := range l.Data {
		f, err := os.Open(DataName(w.base, i) + partialSuffix)
		if err != nil {
			return nil, fmt.Errorf("reading part %s back for parity: %w", DataName(w.base, i), err)
		}
		data = append(data, f)
	}
	for j := range l.Parity {
		f, err := w.create(ParityName(w.base, j))
		if err != nil {
			return nil, err
		}
		parity = append(parity, f)
	}
	sums, err := writeParity(l, data, parity)
	if err != nil {
		return nil, err
	}
	for _, f := range parity {
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("syncing parity part %s: %w", f.Name(), err)
		}
	}
	return sums, nil
}

// Abort removes every file written, under either name.
func (w *Writer) Abort() {
	if w.cur != nil {
		w.cur.Close()
		w.cur = nil
	}
	for _, name := range w.created {
		os.Remove(name + partialSuffix)
		os.Remove(name)
	}
	w.created = nil
	if w.err == nil {
		w.err = errors.New("parts writer aborted")
	}
}

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

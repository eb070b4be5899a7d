package parts

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Repair rebuilds every missing or damaged part of the bundle named by
// path, data and parity, and writes it back under its name (through a
// .partial file, checked against FILE.sha256 before the rename). It
// returns what it found and did; more damage than parity covers is a
// *TooDamagedError and nothing is written.
func Repair(ctx context.Context, path string) (*Status, error) {
	st, err := Inspect(ctx, path)
	if err != nil {
		return nil, err
	}
	bad := st.Bad()
	if len(bad) == 0 {
		return st, nil
	}
	if err := st.beyondParity(bad); err != nil {
		return st, err
	}
	src := make([]io.ReaderAt, len(st.Parts))
	dst := make([]io.WriterAt, len(st.Parts))
	out := map[int]*os.File{}
	defer func() {
		for _, f := range out {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	for i, p := range st.Parts {
		if p.bad() {
			f, err := os.OpenFile(p.path+partialSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return st, fmt.Errorf("rebuilding part %s: %w", p.path, err)
			}
			out[i], dst[i] = f, f
			continue
		}
		f, err := os.Open(p.path)
		if err != nil {
			return st, fmt.Errorf("opening part %s: %w", p.path, err)
		}
		defer f.Close()
		src[i] = f
	}
	if err := rebuild(ctx, st.Layout, st.Parts, src, dst); err != nil {
		return st, err
	}
	for i, f := range out {
		p := &st.Parts[i]
		// A parity part is as long as the first data part; a short last
		// chunk was written only up to the part's size.
		if err := f.Truncate(p.Size); err != nil {
			return st, fmt.Errorf("rebuilding part %s: %w", p.path, err)
		}
		if got, err := hashFile(f); err != nil || got != p.want {
			return st, fmt.Errorf("part %s rebuilt from parity does not match its sha256 (%v): the other parts are damaged too; copy them again", p.Name, err)
		}
		if err := f.Sync(); err != nil {
			return st, fmt.Errorf("rebuilding part %s: %w", p.path, err)
		}
	}
	for i, f := range out {
		p := &st.Parts[i]
		f.Close()
		if err := os.Rename(f.Name(), p.path); err != nil {
			return st, fmt.Errorf("writing rebuilt part %s: %w", p.path, err)
		}
		delete(out, i)
		p.State, p.Problem = StateRebuilt, p.State+": "+p.Problem
	}
	syncDir(dirOf(st.Base))
	return st, nil
}

package parts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// Set is the archive carried in parts, read as one: an io.ReaderAt over
// the data parts, with any lost or damaged part rebuilt from parity into a
// temporary file first.
type Set struct {
	Status *Status
	size   int64
	files  []io.ReaderAt
	starts []int64 // offset of each data part in the archive
	close  []func() error
}

// OpenOptions for Open.
type OpenOptions struct {
	TempDir string // where rebuilt parts are kept while read; "" means the system's
	// SizesOnly skips hashing the parts: a part of the wrong size or
	// missing is still rebuilt, a byte flipped inside one is not seen.
	// For reading metadata (inspect), where a full pass would cost more
	// than the listing.
	SizesOnly bool
}

// Open checks the parts of the bundle named by path and opens them as one
// archive, rebuilding what parity can rebuild. More parts lost than parity
// covers is a *TooDamagedError naming them.
func Open(ctx context.Context, path string, opts OpenOptions) (*Set, error) {
	st, err := inspect(ctx, path, !opts.SizesOnly)
	if err == nil && opts.SizesOnly && len(st.Bad()) > 0 {
		// A rebuild reads every other part: it needs them checked, or a
		// byte flipped in one would be rebuilt into the lost part.
		st, err = inspect(ctx, path, true)
	}
	if err != nil {
		return nil, err
	}
	s := &Set{Status: st}
	if err := s.open(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Set) open(ctx context.Context, opts OpenOptions) error {
	st := s.Status
	bad := st.Bad()
	badData := false
	for _, p := range bad {
		badData = badData || !p.Parity
	}
	if badData {
		if err := st.beyondParity(bad); err != nil {
			return err
		}
	}
	return s.openParts(ctx, opts, badData)
}

// OpenLost opens a set damaged past its parity as it is: reading a bad
// part fails with ErrLost. It tells what the lost parts held.
func OpenLost(st *Status) (*Set, error) {
	s := &Set{Status: st}
	if err := s.openParts(context.Background(), OpenOptions{}, false); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ErrLost is reading a part that is missing or damaged.
var ErrLost = errors.New("the part is missing or damaged")

type lostPart struct{ name string }

func (l lostPart) ReadAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("part %s: %w", l.name, ErrLost)
}

func (s *Set) openParts(ctx context.Context, opts OpenOptions, rebuildBad bool) error {
	st := s.Status
	src := make([]io.ReaderAt, len(st.Parts))
	for i, p := range st.Parts {
		if p.bad() {
			continue
		}
		f, err := os.Open(p.path)
		if err != nil {
			return fmt.Errorf("opening part %s: %w", p.path, err)
		}
		s.close = append(s.close, f.Close)
		src[i] = f
	}
	if rebuildBad {
		if err := s.rebuildTemp(ctx, src, opts); err != nil {
			return err
		}
	}
	var off int64
	for i, p := range st.Parts {
		if p.Parity {
			break
		}
		if src[i] == nil {
			src[i] = lostPart{p.Name}
		}
		s.files = append(s.files, src[i])
		s.starts = append(s.starts, off)
		off += p.Size
	}
	s.size = off
	return nil
}

// rebuildTemp rebuilds the bad data parts into temporary files, checks
// them against the sidecar and reads them from there.
func (s *Set) rebuildTemp(ctx context.Context, src []io.ReaderAt, opts OpenOptions) error {
	st := s.Status
	dst := make([]io.WriterAt, len(st.Parts))
	tmp := map[int]*os.File{}
	for i, p := range st.Parts {
		if !p.bad() || p.Parity {
			continue
		}
		f, err := os.CreateTemp(opts.TempDir, "bundle-part-*")
		if err != nil {
			return fmt.Errorf("rebuilding part %s: %w (set TMPDIR to a disk with room)", p.Name, err)
		}
		name := f.Name()
		s.close = append(s.close, func() error { f.Close(); return os.Remove(name) })
		tmp[i], dst[i] = f, f
	}
	if err := rebuild(ctx, st.Layout, st.Parts, src, dst); err != nil {
		return err
	}
	for i, f := range tmp {
		p := &st.Parts[i]
		if got, err := hashFile(f); err != nil || got != p.want {
			return fmt.Errorf("part %s rebuilt from parity does not match its sha256 (%v): the parity parts are damaged too; copy the parts again", p.Name, err)
		}
		src[i] = f
		p.State, p.Problem = StateRebuilt, p.State+": "+p.Problem
	}
	return nil
}

// Size is the archive's size.
func (s *Set) Size() int64 { return s.size }

// ReadAt reads the archive across parts.
func (s *Set) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("parts: negative offset %d", off)
	}
	n := 0
	for len(p) > 0 {
		if off >= s.size {
			return n, io.EOF
		}
		i := sort.Search(len(s.starts), func(i int) bool { return s.starts[i] > off }) - 1
		part := s.Status.Parts[i]
		within := off - s.starts[i]
		want := int(min(int64(len(p)), part.Size-within))
		m, err := s.files[i].ReadAt(p[:want], within)
		n += m
		off += int64(m)
		p = p[m:]
		if m < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("reading part %s at %d: %w", part.Name, within+int64(m), err)
		}
	}
	return n, nil
}

// Close releases the parts and removes rebuilt temporary files.
func (s *Set) Close() error {
	var first error
	for i := len(s.close) - 1; i >= 0; i-- {
		if err := s.close[i](); err != nil && first == nil {
			first = err
		}
	}
	s.close = nil
	return first
}

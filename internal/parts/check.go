package parts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Inspect finds the parts of the bundle named by path and checks each
// against FILE.sha256: size and sha256. Without a sidecar the data parts
// are taken as found, numbered from 000 without a gap.
func Inspect(ctx context.Context, path string) (*Status, error) {
	return inspect(ctx, path, true)
}

// InspectSizes is Inspect without hashing the parts: missing and
// truncated parts are found, a byte flipped inside one is not.
func InspectSizes(ctx context.Context, path string) (*Status, error) {
	return inspect(ctx, path, false)
}

// inspect is Inspect, hashing the parts or only checking their sizes.
func inspect(ctx context.Context, path string, hash bool) (*Status, error) {
	base, ok := Locate(path)
	if !ok {
		return nil, fmt.Errorf("%s: no such bundle or parts (FILE.000, FILE.sha256)", path)
	}
	st := &Status{Base: base}
	sc, err := ReadSidecar(SidecarName(base))
	switch {
	case errors.Is(err, os.ErrNotExist):
		err = st.listFound()
	case err != nil:
		return nil, fmt.Errorf("checksum file of the bundle: %w: rewrite it with sha256sum or remove it", err)
	case sc.Split():
		st.Sidecar = true
		st.Layout = sc.Layout
		err = st.listLayout(sc)
	default:
		// Someone ran sha256sum FILE.0* > FILE.sha256: check what it lists.
		err = st.listFound()
		for i := range st.Parts {
			if sum, ok := sc.Lookup(st.Parts[i].Name); ok {
				st.Parts[i].want = sum
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return st, st.check(ctx, hash)
}

func (s *Status) listLayout(sc *Sidecar) error {
	l := sc.Layout
	dir := filepath.Dir(s.Base)
	for i, e := range sc.Sums {
		p := PartStatus{Name: e.Name, path: filepath.Join(dir, e.Name), want: e.SHA256}
		if i < l.Data {
			if e.Name != filepath.Base(DataName(s.Base, i)) {
				return fmt.Errorf("checksum file %s lists %s where data part %d belongs", SidecarName(s.Base), e.Name, i)
			}
			p.Size, p.Offset = l.DataSize(i), int64(i)*l.PartSize
		} else {
			if e.Name != filepath.Base(ParityName(s.Base, i-l.Data)) {
				return fmt.Errorf("checksum file %s lists %s where parity part %d belongs", SidecarName(s.Base), e.Name, i-l.Data)
			}
			p.Parity, p.Size = true, l.ShardSize()
		}
		s.Parts = append(s.Parts, p)
	}
	return nil
}

// listFound lists base.000, base.001, … as they are.
func (s *Status) listFound() error {
	matches, _ := filepath.Glob(globEscape(s.Base) + ".[0-9][0-9][0-9]*")
	idx := map[int]string{}
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Ext(m), "."))
		if err == nil {
			idx[n] = m
		}
	}
	keys := make([]int, 0, len(idx))
	for k := range idx {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var off int64
	for i, k := range keys {
		if k != i {
			return fmt.Errorf("bundle %s: part %s is missing (found %s after it) and there is no %s to rebuild it from", s.Base, filepath.Base(DataName(s.Base, i)), filepath.Base(idx[k]), filepath.Base(SidecarName(s.Base)))
		}
		fi, err := os.Stat(idx[k])
		if err != nil {
			return fmt.Errorf("part %s: %w", idx[k], err)
		}
		s.Parts = append(s.Parts, PartStatus{Name: filepath.Base(idx[k]), path: idx[k], Size: fi.Size(), Offset: off, State: StateUnchecked})
		off += fi.Size()
	}
	if len(s.Parts) == 0 {
		return fmt.Errorf("bundle %s: no part found", s.Base)
	}
	return nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// check hashes every part that has a sum, two at a time.
func (s *Status) check(ctx context.Context, hash bool) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i := range s.Parts {
		p := &s.Parts[i]
		g.Go(func() error {
			want := p.want
			if !hash {
				want = ""
			}
			p.State, p.Problem = checkPart(ctx, p.path, p.Size, want, s.Layout != nil)
			return ctx.Err()
		})
	}
	return g.Wait()
}

// checkPart returns a part's state and, when bad, why.
func checkPart(ctx context.Context, path string, size int64, want string, sizeKnown bool) (string, string) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return StateMissing, "not found"
	}
	if err != nil {
		return StateMissing, err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return StateMissing, err.Error()
	}
	if sizeKnown && fi.Size() != size {
		return StateDamaged, fmt.Sprintf("%d bytes, want %d", fi.Size(), size)
	}
	if want == "" {
		return StateUnchecked, ""
	}
	got, err := hashReader(ctx, f)
	if err != nil {
		return StateDamaged, "unreadable: " + err.Error()
	}
	if got != want {
		return StateDamaged, fmt.Sprintf("sha256 %s, want %s", got[:12], want[:12])
	}
	return StateOK, ""
}

func hashFile(f *os.File) (string, error) {
	return hashReader(context.Background(), io.NewSectionReader(f, 0, 1<<62))
}

func hashReader(ctx context.Context, r io.Reader) (string, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := r.Read(buf)
		h.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}

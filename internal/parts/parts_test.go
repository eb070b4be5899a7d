package parts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeSet writes data as parts of base in uneven writes, as a stream
// would come.
func writeSet(t *testing.T, base string, data []byte, opts Options) *Sidecar {
	t.Helper()
	w, err := Create(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for p := data; len(p) > 0; {
		n := min(len(p), 1+r.IntN(70000))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	sc, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func testData(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func readAll(t *testing.T, s *Set) []byte {
	t.Helper()
	out := make([]byte, s.Size())
	if _, err := s.ReadAt(out, 0); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriterCutsAStreamIntoPartsThatConcatenateToIt(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		partSize int64
		parity   int
		parts    int
	}{
		{"exact multiple", 3 << 20, 1 << 20, 0, 3},
		{"short last part", 3<<20 + 17, 1 << 20, 1, 4},
		{"parts smaller than a parity chunk", 100_000, 30_000, 2, 4},
		{"one part", 5000, 1 << 20, 2, 1},
		{"empty", 0, 1000, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "b.tar")
			data := testData(tt.size)
			sc := writeSet(t, base, data, Options{PartSize: tt.partSize, Parity: tt.parity})
			if sc.Layout.Data != tt.parts || len(sc.Sums) != tt.parts+tt.parity {
				t.Fatalf("%d data parts, %d sums; want %d and %d", sc.Layout.Data, len(sc.Sums), tt.parts, tt.parts+tt.parity)
			}
			var cat []byte
			for i := range tt.parts {
				b, err := os.ReadFile(DataName(base, i))
				if err != nil {
					t.Fatal(err)
				}
				cat = append(cat, b...)
			}
			if !bytes.Equal(cat, data) {
				t.Fatalf("concatenation of the parts differs from the stream (%d vs %d bytes)", len(cat), len(data))
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(m) > 0 {
				t.Fatalf("partial files left: %v", m)
			}
			for _, p := range []string{base + ".000", base + ".sha256", base + ".001"} {
				s, err := Open(context.Background(), p, OpenOptions{})
				if tt.parts == 1 && strings.HasSuffix(p, ".001") {
					continue
				}
				if err != nil {
					t.Fatalf("Open(%s): %v", p, err)
				}
				if got := readAll(t, s); !bytes.Equal(got, data) {
					t.Fatalf("Open(%s) reads other bytes", p)
				}
				s.Close()
			}
		})
	}
}

func TestSidecarIsCheckedBySha256sum(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("no sha256sum on PATH")
	}
	dir := t.TempDir()
	writeSet(t, filepath.Join(dir, "b.tar.zst"), testData(50_000), Options{PartSize: 12_000, Parity: 2})
	cmd := exec.Command("sha256sum", "-c", "--strict", "b.tar.zst.sha256")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	if got := strings.Count(string(out), ": OK"); got != 5+2 {
		t.Fatalf("sha256sum checked %d files, want 7:\n%s", got, out)
	}
}

func TestReadAtCrossesPartBoundaries(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "b")
	data := testData(10_000)
	writeSet(t, base, data, Options{PartSize: 999})
	s, err := Open(context.Background(), base, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, r := range [][2]int{{0, 10_000}, {998, 2}, {990, 1020}, {9990, 10}, {5, 0}} {
		got := make([]byte, r[1])
		if _, err := s.ReadAt(got, int64(r[0])); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", r[0], r[1], err)
		}
		if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Fatalf("ReadAt(%d, %d) differs", r[0], r[1])
		}
	}
	if n, err := s.ReadAt(make([]byte, 20), 9990); n != 10 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt past the end = %d, %v; want 10, EOF", n, err)
	}
}

// damage is one way a part is lost on the way.
type damage struct {
	name string
	do   func(path string) error
}

var damages = []damage{
	{"deleted", os.Remove},
	{"truncated", func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		return os.Truncate(p, fi.Size()/2)
	}},
	{"flipped", func(p string) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b[len(b)/3] ^= 0x40
		return os.WriteFile(p, b, 0o644)
	}},
}

// combos lists every choice of k parts out of n.
func combos(n, k int) [][]int {
	if k == 0 {
		return [][]int{nil}
	}
	var out [][]int
	for i := 0; i < n; i++ {
		for _, rest := range combos(n-i-1, k-1) {
			c := []int{i}
			for _, r := range rest {
				c = append(c, r+i+1)
			}
			out = append(out, c)
		}
	}
	return out
}

func partNames(base string, sc *Sidecar) []string {
	var out []string
	for _, s := range sc.Sums {
		out = append(out, filepath.Join(filepath.Dir(base), s.Name))
	}
	return out
}

func TestParityRebuildsAnyNDamagedParts(t *testing.T) {
	for _, parity := range []int{1, 2} {
		src := t.TempDir()
		base := filepath.Join(src, "b.tar.zst")
		data := testData(6*40_000 - 1234) // six parts, the last one short
		sc := writeSet(t, base, data, Options{PartSize: 40_000, Parity: parity})
		if sc.Layout.Data != 6 {
			t.Fatalf("%d data parts, want 6", sc.Layout.Data)
		}
		names := partNames(base, sc)
		for k := 1; k <= parity; k++ {
			for _, c := range combos(len(names), k) {
				for _, dm := range damageChoices(k) {
					var what []string
					for i, p := range c {
						what = append(what, fmt.Sprintf("%s %s", filepath.Base(names[p]), damages[dm[i]].name))
					}
					t.Run(fmt.Sprintf("parity %d: %s", parity, strings.Join(what, ", ")), func(t *testing.T) {
						dir := t.TempDir()
						copyDir(t, src, dir)
						b := filepath.Join(dir, filepath.Base(base))
						for i, p := range c {
							if err := damages[dm[i]].do(filepath.Join(dir, filepath.Base(names[p]))); err != nil {
								t.Fatal(err)
							}
						}
						s, err := Open(context.Background(), b+".sha256", OpenOptions{TempDir: t.TempDir()})
						if err != nil {
							t.Fatalf("open the damaged set: %v", err)
						}
						if got := readAll(t, s); !bytes.Equal(got, data) {
							t.Fatal("the damaged set reads other bytes")
						}
						s.Close()
						st, err := Repair(context.Background(), b+".sha256")
						if err != nil {
							t.Fatalf("repair: %v", err)
						}
						if len(st.Rebuilt()) != k {
							t.Fatalf("repair rebuilt %v, want %d parts", st.Rebuilt(), k)
						}
						for i, n := range names {
							want, _ := os.ReadFile(n)
							got, err := os.ReadFile(filepath.Join(dir, filepath.Base(n)))
							if err != nil || !bytes.Equal(got, want) {
								t.Fatalf("part %d not rebuilt byte for byte: %v", i, err)
							}
						}
						if m, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(m) > 0 {
							t.Fatalf("partial files left: %v", m)
						}
					})
				}
			}
		}
	}
}

// damageChoices lists every assignment of a damage to each of k parts.
func damageChoices(k int) [][]int {
	out := [][]int{nil}
	for range k {
		var next [][]int
		for _, o := range out {
			for d := range damages {
				next = append(next, append(append([]int(nil), o...), d))
			}
		}
		out = next
	}
	return out
}

func TestMoreDamageThanParityIsRefusedNamingTheParts(t *testing.T) {
	for _, parity := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("parity %d", parity), func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "b.tar")
			sc := writeSet(t, base, testData(6*1000), Options{PartSize: 1000, Parity: parity})
			names := partNames(base, sc)
			for i := range parity + 1 {
				if err := damages[i%len(damages)].do(names[i+1]); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, dir)
			_, err := Repair(context.Background(), base+".000")
			var tooMany *TooDamagedError
			if !errors.As(err, &tooMany) {
				t.Fatalf("repair = %v, want TooDamagedError", err)
			}
			for i := range parity + 1 {
				if !strings.Contains(err.Error(), filepath.Base(names[i+1])) {
					t.Errorf("error does not name %s: %v", filepath.Base(names[i+1]), err)
				}
			}
			if parity > 0 && !strings.Contains(err.Error(), "1 more parity part(s) would have been needed") {
				t.Errorf("error does not say how many more parity parts: %v", err)
			}
			if _, err := Open(context.Background(), base+".000", OpenOptions{}); !errors.As(err, &tooMany) {
				t.Fatalf("open = %v, want TooDamagedError", err)
			}
			if after := snapshot(t, dir); after != before {
				t.Fatalf("a refused repair changed the files:\n%s\n%s", before, after)
			}
		})
	}
}

func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		fi, _ := e.Info()
		fmt.Fprintf(&b, "%s %d\n", e.Name(), fi.Size())
	}
	return b.String()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocateFindsTheSetFromAnyOfItsNames(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "b.tar.zst")
	writeSet(t, base, testData(3000), Options{PartSize: 1000, Parity: 1})
	for _, p := range []string{base, base + ".000", base + ".002", base + ".p000", base + ".sha256"} {
		if got, ok := Locate(p); !ok || got != base {
			t.Errorf("Locate(%s) = %q, %v; want %s", p, got, ok, base)
		}
	}
	os.Remove(base + ".000")
	if got, ok := Locate(base + ".001"); !ok || got != base {
		t.Errorf("with the first part lost, Locate = %q, %v", got, ok)
	}
	plain := filepath.Join(dir, "plain.tar")
	os.WriteFile(plain, []byte("x"), 0o644)
	if _, ok := Locate(plain); ok {
		t.Errorf("a single file is taken for parts")
	}
}

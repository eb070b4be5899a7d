package unpack

import (
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/sign"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
)

// sixParts writes the fixture as a zstd archive cut into six data parts
// (the last one short) and parity parts, in a fresh directory.
func sixParts(t *testing.T, f *fixture, parity int) string {
	t.Helper()
	data := f.bytes(writeOpts{comp: layout.Zstd})
	base := filepath.Join(t.TempDir(), "b.tar.zst")
	w, err := parts.Create(base, parts.Options{PartSize: int64(len(data)+5) / 6, Parity: parity})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	sc, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Layout.Data != 6 {
		t.Fatalf("%d data parts, want 6", sc.Layout.Data)
	}
	return base
}

func mediaFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.name(f.image(31, 3, 3000), "src:5000/team/app:1.0")
	return f
}

// pushed counts the requests that would change the target.
func pushed(reg *testregistry.Registry) int {
	n := 0
	for _, m := range []string{"POST", "PUT", "PATCH"} {
		for _, k := range []string{"upload", "blob", "manifest"} {
			n += reg.Count(m, k)
		}
	}
	return n
}

func TestImportReadsASplitBundleFromAnyOfItsNames(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	f := mediaFixture(t)
	base := sixParts(t, f, 0)
	for i, name := range []string{base + ".000", base + ".004", base + ".sha256", base} {
		prefix := fmt.Sprintf("%s/n%d", reg.Host, i)
		if _, err, _ := importTo(t, t.Context(), name, prefix, nil); err != nil {
			t.Fatalf("import %s: %v", filepath.Base(name), err)
		}
		mustHave(t, reg, fmt.Sprintf("n%d/team/app", i), "1.0", "")
	}
}

// damages are the ways a part is lost on the way.
var damages = []struct {
	name string
	do   func(t *testing.T, path string)
}{
	{"deleted", func(t *testing.T, p string) { os.Remove(p) }},
	{"truncated", func(t *testing.T, p string) {
		fi, _ := os.Stat(p)
		os.Truncate(p, fi.Size()/3)
	}},
	{"flipped", func(t *testing.T, p string) {
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0x10
		os.WriteFile(p, b, 0o644)
	}},
}

// ways lists every choice of k of n parts, each damaged in every way.
func ways(n, k int) [][][2]int {
	var out [][][2]int
	var rec func(start int, cur [][2]int)
	rec = func(start int, cur [][2]int) {
		if len(cur) == k {
			out = append(out, append([][2]int(nil), cur...))
			return
		}
		for i := start; i < n; i++ {
			for d := range damages {
				rec(i+1, append(cur, [2]int{i, d}))
			}
		}
	}
	rec(0, nil)
	return out
}

func TestImportAndRepairRebuildAnyNDamagedPartsOfSix(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	f := mediaFixture(t)
	for _, parity := range []int{1, 2} {
		src := sixParts(t, f, parity)
		names, _ := parts.ReadSidecar(src + ".sha256")
		caseN := 0
		for k := 1; k <= parity; k++ {
			for _, way := range ways(6+parity, k) {
				var what []string
				for _, w := range way {
					what = append(what, names.Sums[w[0]].Name+" "+damages[w[1]].name)
				}
				caseN++
				t.Run(fmt.Sprintf("parity %d: %s", parity, strings.Join(what, ", ")), func(t *testing.T) {
					base := copySet(t, src)
					for _, w := range way {
						damages[w[1]].do(t, filepath.Join(filepath.Dir(base), names.Sums[w[0]].Name))
					}
					// A fresh repository each time: every blob is read from
					// the bundle, none found on the target.
					repo := fmt.Sprintf("p%dc%d", parity, caseN)
					_, err, notices := importTo(t, t.Context(), base+".sha256", reg.Host+"/"+repo, nil)
					if err != nil {
						t.Fatalf("import straight from the damaged parts: %v", err)
					}
					mustHave(t, reg, repo+"/team/app", "1.0", "")
					if !strings.Contains(strings.Join(notices, "\n"), "rebuilt") && damagesData(way, 6) {
						t.Errorf("import did not say what it rebuilt: %q", notices)
					}
					st, err := parts.Repair(t.Context(), base+".000")
					if err != nil {
						t.Fatalf("repair: %v", err)
					}
					if len(st.Rebuilt()) != k {
						t.Fatalf("repair rebuilt %v, want %d parts", st.Rebuilt(), k)
					}
					for _, s := range names.Sums {
						want, _ := os.ReadFile(filepath.Join(filepath.Dir(src), s.Name))
						got, _ := os.ReadFile(filepath.Join(filepath.Dir(base), s.Name))
						if !bytes.Equal(got, want) {
							t.Fatalf("%s not rebuilt byte for byte", s.Name)
						}
					}
				})
			}
		}
	}
}

func damagesData(way [][2]int, data int) bool {
	for _, w := range way {
		if w[0] < data {
			return true
		}
	}
	return false
}

func copySet(t *testing.T, base string) string {
	t.Helper()
	dir := t.TempDir()
	ents, _ := os.ReadDir(filepath.Dir(base))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(base), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	return filepath.Join(dir, filepath.Base(base))
}

func TestImportRefusesMoreDamageThanParityNamingTheParts(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	f := mediaFixture(t)
	for _, parity := range []int{1, 2} {
		t.Run(fmt.Sprintf("parity %d", parity), func(t *testing.T) {
			base := sixParts(t, f, parity)
			var lost []string
			for i := range parity + 1 {
				p := parts.DataName(base, i*2)
				damages[i%len(damages)].do(t, p)
				lost = append(lost, filepath.Base(p))
			}
			reg.ResetCounts()
			_, err, _ := importTo(t, t.Context(), base+".000", reg.Host, nil)
			if err == nil {
				t.Fatal("import of a set damaged past its parity succeeded")
			}
			for _, n := range lost {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("the error does not name %s: %v", n, err)
				}
			}
			if !strings.Contains(err.Error(), "1 more parity part(s) would have been needed") {
				t.Errorf("the error does not say how many more parity parts: %v", err)
			}
			if n := pushed(reg); n != 0 {
				t.Fatalf("%d requests pushed something", n)
			}
		})
	}
}

func TestImportKeyRefusesABundleAlteredAfterSigning(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	f := mediaFixture(t)
	keys := t.TempDir()
	pub := writeKeyPair(t, keys, "signer")
	tests := []struct {
		name   string
		parity int
		alter  func(t *testing.T, base string)
		ok     bool
	}{
		{"untouched", 0, func(*testing.T, string) {}, true},
		{"a byte of a part", 0, func(t *testing.T, base string) { damages[2].do(t, base+".003") }, false},
		{"a part replaced", 0, func(t *testing.T, base string) {
			b, _ := os.ReadFile(base + ".001")
			os.WriteFile(base+".003", b, 0o644)
		}, false},
		{"the sidecar edited", 0, func(t *testing.T, base string) {
			b, _ := os.ReadFile(base + ".sha256")
			os.WriteFile(base+".sha256", append(b, "# a comment\n"...), 0o644)
		}, false},
		{"the signature lost", 0, func(t *testing.T, base string) { os.Remove(base + ".sha256.sig") }, false},
		{"another key's signature", 0, func(t *testing.T, base string) {
			signWith(t, filepath.Join(keys, "other"), base)
		}, false},
		// Parity rebuilds the signed bytes: the sums it checks them
		// against are the signed ones.
		{"a byte of a part, rebuilt from parity", 1, func(t *testing.T, base string) { damages[2].do(t, base+".003") }, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := sixParts(t, f, tt.parity)
			signWith(t, filepath.Join(keys, "signer"), base)
			tt.alter(t, base)
			reg.ResetCounts()
			repo := fmt.Sprintf("k%d", i)
			_, err, _ := importTo(t, t.Context(), base+".000", reg.Host+"/"+repo, func(o *Options) { o.Key = pub })
			if tt.ok {
				if err != nil {
					t.Fatalf("import --key: %v", err)
				}
				mustHave(t, reg, repo+"/team/app", "1.0", "")
				return
			}
			// The signature is refused by authenticate; a part that differs
			// from the signed list by Open, which hashes every part before
			// anything is pushed.
			want := "nothing pushed"
			if strings.HasPrefix(tt.name, "a byte") || strings.HasPrefix(tt.name, "a part") {
				want = "b.tar.zst.003 damaged"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("import --key = %v, want a refusal saying %q", err, want)
			}
			if n := pushed(reg); n != 0 {
				t.Fatalf("%d requests pushed something", n)
			}
		})
	}
	t.Run("a single file, altered", func(t *testing.T) {
		file := f.file("b.tar", writeOpts{})
		data, _ := os.ReadFile(file)
		os.WriteFile(file+".sha256", []byte(fmt.Sprintf("%x  b.tar\n", sha256Of(data))), 0o644)
		signSidecar(t, filepath.Join(keys, "signer"), file+".sha256")
		data[len(data)-2000] ^= 1
		os.WriteFile(file, data, 0o644)
		reg.ResetCounts()
		if _, err, _ := importTo(t, t.Context(), file, reg.Host+"/single", func(o *Options) { o.Key = pub }); err == nil {
			t.Fatal("an altered single-file bundle was imported")
		}
		if n := pushed(reg); n != 0 {
			t.Fatalf("%d requests pushed something", n)
		}
	})
}

// writeKeyPair writes dir/name.key (PKCS#8) and returns dir/name.pub.
func writeKeyPair(t *testing.T, dir, name string) string {
	t.Helper()
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".key"), priv, 0o600)
	os.WriteFile(filepath.Join(dir, name+".pub"), pub, 0o644)
	return filepath.Join(dir, name+".pub")
}

// signWith signs base's sidecar with key (made if absent).
func signWith(t *testing.T, key, base string) {
	t.Helper()
	if _, err := os.Stat(key + ".key"); err != nil {
		writeKeyPair(t, filepath.Dir(key), filepath.Base(key))
	}
	signSidecar(t, key, parts.SidecarName(base))
}

func signSidecar(t *testing.T, key, sidecar string) {
	t.Helper()
	s, err := sign.LoadSigner(key+".key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.SignFile(sidecar, s); err != nil {
		t.Fatal(err)
	}
}

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }

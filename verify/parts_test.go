package verify

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/sign"
	"github.com/bundle-dev/bundle/layout"
)

// splitFile writes data as the parts of dir/name, cut every partSize bytes.
func splitFile(t testing.TB, dir, name string, data []byte, partSize int64, parity int) string {
	t.Helper()
	base := filepath.Join(dir, name)
	w, err := parts.Create(base, parts.Options{PartSize: partSize, Parity: parity})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return base
}

// catParts is what 'cat FILE.0*' makes.
func catParts(t testing.TB, base string) []byte {
	t.Helper()
	names, _ := filepath.Glob(base + ".[0-9][0-9][0-9]")
	var out []byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func inventoryJSON(t *testing.T, path string) string {
	t.Helper()
	inv, err := Inspect(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("inspect %s: %v", path, err)
	}
	// What the archive holds, not how it travels.
	inv.File, inv.Parts, inv.BytesRead, inv.Signature = "", nil, 0, ""
	data, _ := json.Marshal(inv)
	return string(data)
}

// A part size that is no multiple of 512 and smaller than the blobs and
// the zstd frames (64 KiB chunks, each blob of 1000+ bytes its own frame)
// cuts tar headers, blobs and frames in the middle.
const oddPartSize = 777

func TestEveryNameOfASplitBundleReadsAsTheWholeFile(t *testing.T) {
	for _, c := range []layout.Compression{layout.None, layout.Zstd, layout.Gzip} {
		t.Run(string(c), func(t *testing.T) {
			f, _ := standardFixture(t)
			data := f.archive(c, false)
			dir := t.TempDir()
			whole := writeFile(t, t.TempDir(), "b"+extFor(c), data, true)
			base := splitFile(t, dir, "b"+extFor(c), data, oddPartSize, 1)
			if !bytes.Equal(catParts(t, base), data) {
				t.Fatal("the parts do not concatenate to the archive")
			}
			if c == layout.None {
				assertCutsHeaders(t, data, oddPartSize)
			}
			want := inventoryJSON(t, whole)
			for _, name := range []string{base + ".000", base + ".003", base + ".p000", base + ".sha256", base} {
				rep, err := Check(context.Background(), name, Options{})
				if err != nil {
					t.Fatalf("verify %s: %v", name, err)
				}
				if !rep.OK || rep.Sidecar != SidecarOK || rep.Parts == nil || rep.File != base {
					t.Fatalf("verify %s: ok %v, sidecar %s, file %s:\n%s", name, rep.OK, rep.Sidecar, rep.File, dumpProblems(rep))
				}
				if got := inventoryJSON(t, name); got != want {
					t.Fatalf("inspect %s differs from inspect of the whole file:\n%s\n%s", name, got, want)
				}
			}
			// cat FILE.0* > FILE: a bundle like any other, checked slice by
			// slice against the FILE.sha256 that lists the parts.
			joined := catParts(t, base)
			if err := os.WriteFile(base, joined, 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := Check(context.Background(), base, Options{})
			if err != nil || !rep.OK || rep.Sidecar != SidecarOK || rep.Parts != nil {
				t.Fatalf("verify of the joined parts: %v, ok %v, sidecar %s:\n%s", err, rep.OK, rep.Sidecar, dumpProblems(rep))
			}
			joined[len(joined)-10] ^= 1
			os.WriteFile(base, joined, 0o644)
			if rep, err := Check(context.Background(), base, Options{}); err != nil || rep.OK || len(problemsWith(rep, SeverityError, "its part")) == 0 {
				t.Fatalf("verify of damaged joined parts: %v:\n%s", err, dumpProblems(rep))
			}
			os.Remove(base)

			inv, err := Inspect(context.Background(), base+".000", Options{})
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			inv.WriteText(&text)
			if !strings.Contains(text.String(), "split into ") || !strings.Contains(text.String(), ".000 to b"+extFor(c)+".0") ||
				!strings.Contains(text.String(), " of 777 B each; 1 parity part(s)") {
				t.Errorf("inspect does not say how the bundle is split:\n%s", text.String())
			}
		})
	}
}

// assertCutsHeaders checks that some part boundary falls inside a tar
// header, so that the test reads a header across two parts.
func assertCutsHeaders(t *testing.T, data []byte, partSize int64) {
	t.Helper()
	a, err := layout.OpenArchive(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var inHeader, inBlob bool
	for _, e := range a.Entries() {
		for cut := partSize; cut < int64(len(data)); cut += partSize {
			inHeader = inHeader || (cut > e.Header && cut < e.Header+512)
			inBlob = inBlob || (cut > e.Offset && cut < e.Offset+e.Size)
		}
	}
	if !inHeader || !inBlob {
		t.Fatalf("no cut inside a header (%v) or a blob (%v)", inHeader, inBlob)
	}
}

func TestVerifyReadsDamagedPartsThroughParityAndNamesWhatItCannot(t *testing.T) {
	f, _ := standardFixture(t)
	data := f.archive(layout.Zstd, false)
	tests := []struct {
		name    string
		damage  []string // part suffixes to delete
		ok      bool
		sidecar string
	}{
		{"one data part lost", []string{".002"}, true, SidecarRebuilt},
		{"a parity part lost", []string{".p000"}, true, SidecarRebuilt},
		{"two data parts lost", []string{".001", ".004"}, false, SidecarMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := splitFile(t, t.TempDir(), "b.tar.zst", data, oddPartSize, 1)
			for _, s := range tt.damage {
				if err := os.Remove(base + s); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := Check(context.Background(), base+".sha256", Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK != tt.ok || rep.Sidecar != tt.sidecar {
				t.Fatalf("ok %v sidecar %s, want %v %s:\n%s", rep.OK, rep.Sidecar, tt.ok, tt.sidecar, dumpProblems(rep))
			}
			for _, s := range tt.damage {
				sev := SeverityWarning
				if !tt.ok {
					sev = SeverityError
				}
				if len(problemsWith(rep, sev, filepath.Base(base+s))) == 0 {
					t.Errorf("no problem names %s:\n%s", filepath.Base(base+s), dumpProblems(rep))
				}
			}
			if !tt.ok && len(problemsWith(rep, SeverityError, "1 more parity part(s) would have been needed")) == 0 {
				t.Errorf("the report does not say how many more parity parts were needed:\n%s", dumpProblems(rep))
			}
		})
	}
}

// signedBundle writes a split, signed bundle and returns its base and the
// public key.
func signedBundle(t *testing.T, data []byte) (base, pub string) {
	t.Helper()
	dir := t.TempDir()
	base = splitFile(t, dir, "b.tar.zst", data, oddPartSize, 0)
	// A plain PKCS#8 key: internal/sign tests cosign's encrypted ones, whose
	// scrypt would make each case here take a second.
	privPEM, pubPEM, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	priv, pub := filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")
	for p, b := range map[string][]byte{priv: privPEM, pub: pubPEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sign.LoadSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.SignFile(parts.SidecarName(base), s); err != nil {
		t.Fatal(err)
	}
	return base, pub
}

func TestVerifyKeyRefusesABundleAlteredAfterSigning(t *testing.T) {
	f, _ := standardFixture(t)
	data := f.archive(layout.Zstd, false)
	tests := []struct {
		name  string
		alter func(t *testing.T, base string)
		want  string // in the error; "" for a report that is not OK
	}{
		{"untouched", func(*testing.T, string) {}, ""},
		{"a byte of a part", func(t *testing.T, base string) { flipByte(t, base+".002") }, ""},
		{"a part replaced", func(t *testing.T, base string) {
			b, _ := os.ReadFile(base + ".001")
			os.WriteFile(base+".002", b, 0o644)
		}, ""},
		{"the sidecar edited", func(t *testing.T, base string) {
			b, _ := os.ReadFile(base + ".sha256")
			os.WriteFile(base+".sha256", bytes.Replace(b, []byte(" b.tar.zst.000"), []byte("  b.tar.zst.000"), 1), 0o644)
		}, "signature does not verify"},
		{"the signature lost", func(t *testing.T, base string) { os.Remove(base + ".sha256.sig") }, "no signature"},
		{"another key's signature", func(t *testing.T, base string) { swapSignature(t, base) }, "signature does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, pub := signedBundle(t, data)
			tt.alter(t, base)
			rep, err := Check(context.Background(), base+".000", Options{Key: pub})
			switch {
			case tt.name == "untouched":
				if err != nil || !rep.OK || rep.Signature != SignatureVerified {
					t.Fatalf("a signed bundle fails: %v %+v", err, rep)
				}
			case tt.want != "":
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Check = %v, want an error with %q", err, tt.want)
				}
			default:
				if err != nil || rep.OK {
					t.Fatalf("Check = %v, ok %v: want a failed report", err, rep != nil && rep.OK)
				}
			}
			if tt.name == "untouched" {
				return
			}
			// What import does first: Authenticate, then Open.
			err = Authenticate(context.Background(), base+".000", Options{Key: pub})
			if err == nil {
				var b *Bundle
				if b, err = Open(context.Background(), base+".000", Options{}); err == nil {
					b.Close()
				}
			}
			if err == nil {
				t.Fatal("Authenticate and Open accept an altered bundle")
			}
		})
	}
	t.Run("no key: a signature is reported, not checked", func(t *testing.T) {
		base, _ := signedBundle(t, data)
		rep, err := Check(context.Background(), base, Options{})
		if err != nil || rep.Signature != SignatureUnchecked {
			t.Fatalf("signature %q, %v", rep.Signature, err)
		}
	})
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// swapSignature replaces the signature by one another key made over the
// same sidecar.
func swapSignature(t *testing.T, base string) {
	t.Helper()
	privPEM, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(p, privPEM, 0o600)
	s, err := sign.LoadSigner(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.SignFile(parts.SidecarName(base), s); err != nil {
		t.Fatal(err)
	}
}

func TestPartsLostPastParityAreNamedWithTheImagesTheyHold(t *testing.T) {
	f := newFixture(t)
	small := f.image(41, 500)
	large := f.image(42, 30_000) // last in the archive: its layer spans several parts
	f.tag(small, "src.example:5000/team/small:1")
	f.tag(large, "src.example:5000/team/large:1")
	data := f.archive(layout.None, false)
	const partSize = 4000
	base := splitFile(t, t.TempDir(), "b.tar", data, partSize, 0)
	// A part in the middle of the large layer.
	lost := parts.DataName(base, (len(data)-15_000)/partSize)
	if err := os.Remove(lost); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(context.Background(), base+".sha256", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Fatal("a bundle with a part lost verifies")
	}
	named := problemsWith(rep, SeverityError, "team/large:1")
	if len(named) == 0 || len(problemsWith(rep, SeverityError, "team/small:1")) != 0 {
		t.Fatalf("the report does not name just the image in the lost part %s:\n%s", filepath.Base(lost), dumpProblems(rep))
	}
	if len(problemsWith(rep, SeverityError, filepath.Base(lost))) == 0 {
		t.Fatalf("the report does not name the lost part:\n%s", dumpProblems(rep))
	}
}

func TestInspectOfPartsReadsOnlyWhatItLists(t *testing.T) {
	f := newFixture(t)
	f.tag(f.image(43, 30_000), "src.example:5000/team/large:1")
	data := f.archive(layout.None, false)
	base := splitFile(t, t.TempDir(), "b.tar", data, 4000, 1)
	// A byte flipped inside the layer: inspect does not hash the parts
	// (that would read the whole bundle to list it), verify does and
	// rebuilds the part from parity.
	flipByte(t, parts.DataName(base, 4))
	inv, err := Inspect(context.Background(), base+".000", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Images) != 1 || inv.Parts == nil || inv.Parts.Parts[4].State != parts.StateUnchecked {
		t.Fatalf("inspect: %d images, parts %+v", len(inv.Images), inv.Parts)
	}
	rep, err := Check(context.Background(), base+".000", Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Sidecar != SidecarRebuilt || rep.Parts.Parts[4].State != parts.StateRebuilt {
		t.Fatalf("verify: ok %v, sidecar %s:\n%s", rep.OK, rep.Sidecar, dumpProblems(rep))
	}
	// With a part lost too (two parity parts), inspect rebuilds it: from
	// checked parts, not from the one with the flipped byte.
	base = splitFile(t, t.TempDir(), "b.tar", data, 4000, 2)
	flipByte(t, parts.DataName(base, 4))
	os.Remove(parts.DataName(base, 2))
	if _, err := Inspect(context.Background(), base+".000", Options{TempDir: t.TempDir()}); err != nil {
		t.Fatalf("inspect with a part lost and another flipped: %v", err)
	}
}

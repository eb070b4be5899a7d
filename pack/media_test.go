package pack

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/sign"
	"github.com/bundle-dev/bundle/internal/testregistry"
)

// catParts is what 'cat FILE.0*' makes of the data parts listed in rep.
func catParts(t testing.TB, out string) []byte {
	t.Helper()
	sc, err := parts.ReadSidecar(out + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, s := range sc.Sums[:sc.Layout.Data] {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(out), s.Name))
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, data...)
	}
	return b
}

func TestExportSplitPartsConcatenateToThePlainExport(t *testing.T) {
	r := testregistry.NewDistribution(t)
	r.PushImage(t, "split", "1", testregistry.ImageSpec{Seed: 21, Layers: 3, LayerSize: 200 << 10})
	for _, name := range []string{"b.tar", "b.tar.gz", "b.tar.zst"} {
		for _, parity := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s parity %d", name, parity), func(t *testing.T) {
				plain := testOptions(t, name)
				if _, err := Export(context.Background(), []string{r.Ref("split", "1")}, plain); err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(plain.Output)
				if err != nil {
					t.Fatal(err)
				}
				opts := testOptions(t, name)
				// An earlier plain export under the same name is replaced
				// (--force).
				os.WriteFile(opts.Output, want, 0o644)
				opts.Force = true
				// An odd size that cuts layers, tar headers and zstd frames.
				opts.SplitSize, opts.Parity = 99_999, parity
				rep, err := Export(context.Background(), []string{r.Ref("split", "1")}, opts)
				if err != nil {
					t.Fatal(err)
				}
				if got := catParts(t, opts.Output); !bytes.Equal(got, want) {
					t.Fatalf("the parts (%d bytes) are not the plain export (%d bytes)", len(got), len(want))
				}
				data := (len(want) + 99_998) / 99_999
				if len(rep.Parts) != data+parity || rep.ArchiveSize != int64(len(want)) {
					t.Fatalf("report lists %d parts of %d bytes, want %d+%d of %d", len(rep.Parts), rep.ArchiveSize, data, parity, len(want))
				}
				if _, err := os.Stat(opts.Output); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a split export also wrote %s", opts.Output)
				}
				if m, _ := filepath.Glob(opts.Output + "*.partial"); len(m) > 0 {
					t.Errorf("partial files left: %v", m)
				}
				st, err := parts.Inspect(context.Background(), opts.Output+".sha256")
				if err != nil || len(st.Bad()) > 0 {
					t.Fatalf("the parts do not match their checksum file: %v %+v", err, st)
				}
			})
		}
	}
}

func TestExportSplitCancelledLeavesNoPart(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "cancel", "1", testregistry.ImageSpec{Seed: 22, Layers: 3, LayerSize: 256 << 10})
	opts := testOptions(t, "cancel.tar.zst")
	opts.Concurrency = 1
	opts.SplitSize, opts.Parity = 100_000, 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.Progress = &cancelOn{id: img.Layers[2].Digest.String(), cancel: cancel}
	if _, err := Export(ctx, []string{r.Ref("cancel", "1")}, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Export = %v, want cancelled", err)
	}
	if m, _ := filepath.Glob(opts.Output + "*"); len(m) > 0 {
		t.Fatalf("a failed split export left %v", m)
	}
}

func TestExportSignsTheChecksumFile(t *testing.T) {
	r := testregistry.NewDistribution(t)
	r.PushImage(t, "signed", "1", testregistry.ImageSpec{Seed: 23})
	keys := t.TempDir()
	privPEM, pubPEM, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("pw")))
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")
	os.WriteFile(priv, privPEM, 0o600)
	os.WriteFile(pub, pubPEM, 0o644)
	for _, split := range []int64{0, 4096} {
		opts := testOptions(t, "b.tar.zst")
		opts.SplitSize, opts.SignKey = split, priv
		opts.KeyPassword = func() ([]byte, error) { return []byte("pw"), nil }
		rep, err := Export(context.Background(), []string{r.Ref("signed", "1")}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Signature != opts.Output+".sha256.sig" {
			t.Fatalf("report names signature %q", rep.Signature)
		}
		v, err := sign.LoadVerifier(pub)
		if err != nil {
			t.Fatal(err)
		}
		if err := sign.VerifyFile(opts.Output+".sha256", v); err != nil {
			t.Fatalf("split %d: %v", split, err)
		}
	}

	t.Run("a wrong password fails before anything is fetched", func(t *testing.T) {
		opts := testOptions(t, "b.tar.zst")
		opts.SignKey = priv
		opts.KeyPassword = func() ([]byte, error) { return []byte("wrong"), nil }
		r.ResetCounts()
		if _, err := Export(context.Background(), []string{r.Ref("signed", "1")}, opts); err == nil {
			t.Fatal("export with a wrong password succeeded")
		}
		if n := r.Count("GET", "blob") + r.Count("GET", "manifest") + r.Count("HEAD", "manifest"); n != 0 {
			t.Fatalf("%d requests before the key was refused", n)
		}
	})
}

// BenchmarkExportSplitParity compares a plain export with one cut into
// parts with two parity parts: the issue asks for at most 1.3 times.
func BenchmarkExportSplitParity(b *testing.B) {
	r := testregistry.NewDistribution(b)
	const layerSize = 16 << 20
	r.PushImage(b, "bench", "1", testregistry.ImageSpec{Seed: 13, Layers: 4, LayerSize: layerSize})
	for _, bc := range []struct {
		name   string
		split  int64
		parity int
	}{
		{"plain", 0, 0},
		// Eight data parts and two parity parts: 25% more bytes to write
		// than the archive, as for a bundle of ten or so DVDs or less.
		{"split-8MiB-parity-2", 8 << 20, 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(4 * layerSize)
			for b.Loop() {
				opts := testOptions(b, "bench.tar.zst")
				opts.SplitSize, opts.Parity = bc.split, bc.parity
				if _, err := Export(context.Background(), []string{r.Ref("bench", "1")}, opts); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(filepath.Dir(opts.Output))
				b.StartTimer()
			}
		})
	}
}

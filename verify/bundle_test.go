package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type want struct{ sev, text string }

func TestBundleAcceptsCompleteBundlesInEveryCompression(t *testing.T) {
	for _, c := range []layout.Compression{layout.None, layout.Gzip, layout.Zstd} {
		for _, indexLast := range []bool{false, true} {
			t.Run(string(c)+map[bool]string{false: "", true: "/index last"}[indexLast], func(t *testing.T) {
				f, _ := standardFixture(t)
				p := writeFile(t, t.TempDir(), "b"+extFor(c), f.archive(c, indexLast), true)
				rep, err := Check(context.Background(), p, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.OK || len(rep.Problems) != 0 {
					t.Fatalf("report not clean:\n%s", dumpProblems(rep))
				}
				if rep.Compression != string(c) || rep.Sidecar != SidecarOK {
					t.Errorf("compression %q sidecar %q", rep.Compression, rep.Sidecar)
				}
				if rep.Blobs != len(f.names) || rep.Entries != len(f.names)+2 {
					t.Errorf("blobs %d entries %d, want %d and %d", rep.Blobs, rep.Entries, len(f.names), len(f.names)+2)
				}
				// index, two platform manifests, signature, single image
				if rep.Manifests != 5 {
					t.Errorf("manifests %d, want 5", rep.Manifests)
				}
				wantImages := []string{"src.example:5000/team/app:1.0", "src.example:5000/team/tool:2"}
				if !slices.Equal(rep.Images, wantImages) {
					t.Errorf("images %v, want %v", rep.Images, wantImages)
				}
			})
		}
	}
}

func TestBundleReportsGraphProblems(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*fixture, standard)
		wantOK bool
		want   []want
	}{
		{
			name:   "sparse index leaves a platform out on purpose",
			mutate: func(f *fixture, s standard) { f.drop(s.arm.Digest) },
			wantOK: true,
			want:   []want{{SeverityInfo, "left out of sparse index"}},
		},
		{
			name: "referrer of a platform left out of a sparse index is info",
			mutate: func(f *fixture, s standard) {
				f.list(f.referrer(s.arm, "application/spdx+json", 11))
				f.drop(s.arm.Digest)
			},
			wantOK: true,
			want:   []want{{SeverityInfo, "referrer"}, {SeverityInfo, "left out of sparse index"}},
		},
		{
			name: "missing layer is an error",
			mutate: func(f *fixture, s standard) {
				f.drop(layerOf(f, s.arm, 0).Digest)
			},
			want: []want{{SeverityError, "is missing from the bundle"}},
		},
		{
			name:   "missing tagged image is an error",
			mutate: func(f *fixture, s standard) { f.drop(s.single.Digest) },
			want:   []want{{SeverityError, "listed by index.json is missing"}},
		},
		{
			name:   "orphan blob is a warning",
			mutate: func(f *fixture, s standard) { f.put([]byte("nobody points here")) },
			wantOK: true,
			want:   []want{{SeverityWarning, "orphan blob"}},
		},
		{
			name: "referrer whose subject is absent is an error",
			mutate: func(f *fixture, s standard) {
				f.list(f.referrer(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("gone"), Size: 4}, "application/spdx+json", 9))
			},
			want: []want{{SeverityError, "subject of referrer"}},
		},
		{
			// import pushes what index.json lists, and verify checks that.
			name: "referrer not listed in index.json is an orphan",
			mutate: func(f *fixture, s standard) {
				f.referrer(s.single, "application/spdx+json", 9)
			},
			wantOK: true,
			want:   []want{{SeverityWarning, "orphan blob"}},
		},
		{
			name: "absent foreign layer is info",
			mutate: func(f *fixture, s standard) {
				m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: f.json(ocispec.MediaTypeImageConfig, map[string]string{"os": "windows"}),
					Layers: []ocispec.Descriptor{{MediaType: graph.MediaTypeDockerForeignLayer, Digest: digest.FromString("windows base"), Size: 1 << 30}}}
				m.SchemaVersion = 2
				f.tag(f.json(ocispec.MediaTypeImageManifest, m), "src.example:5000/win:1")
			},
			wantOK: true,
			want:   []want{{SeverityInfo, "foreign (non-distributable) layer"}},
		},
		{
			name: "size in descriptor disagrees with the entry",
			mutate: func(f *fixture, s standard) {
				f.index.Manifests[1].Size++ // the untagged signature
			},
			want: []want{{SeverityError, "declares"}},
		},
		{
			name:   "no index.json",
			mutate: func(f *fixture, s standard) { f.noIndex = true },
			want:   []want{{SeverityError, "no index.json"}},
		},
		{
			name: "blob that does not hash to its name",
			mutate: func(f *fixture, s standard) {
				name := layout.BlobPath(layerOf(f, s.amd, 1).Digest)
				f.data[name] = bytes.Clone(f.data[name])
				f.data[name][10] ^= 0xff
			},
			want: []want{{SeverityError, "does not hash to its name"}},
		},
		{
			name: "manifest descriptor pointing at a layer",
			mutate: func(f *fixture, s standard) {
				d := layerOf(f, s.amd, 1)
				d.MediaType = ocispec.MediaTypeImageManifest
				f.list(d)
			},
			want: []want{{SeverityError, "cannot be read"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, s := standardFixture(t)
			tc.mutate(f, s)
			p := writeFile(t, t.TempDir(), "b.tar.zst", f.archive(layout.Zstd, false), true)
			rep, err := Check(context.Background(), p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK != tc.wantOK {
				t.Errorf("OK = %v, want %v", rep.OK, tc.wantOK)
			}
			for _, w := range tc.want {
				if len(problemsWith(rep, w.sev, w.text)) == 0 {
					t.Errorf("no %s problem with %q in:\n%s", w.sev, w.text, dumpProblems(rep))
				}
			}
		})
	}
}

// layerOf reads back the i-th layer of a stored manifest.
func layerOf(f *fixture, d ocispec.Descriptor, i int) ocispec.Descriptor {
	m, err := graph.Parse(d.MediaType, f.data[layout.BlobPath(d.Digest)])
	if err != nil {
		f.t.Fatal(err)
	}
	return m.Layers[i]
}

func TestBundleChecksSidecar(t *testing.T) {
	tests := []struct {
		name    string
		sidecar func(path string) error // nil writes none
		want    string
		wantOK  bool
	}{
		{name: "missing sidecar is not an error", want: SidecarMissing, wantOK: true},
		{name: "matching sidecar", sidecar: func(string) error { return nil }, want: SidecarOK, wantOK: true},
		{name: "other checksum", sidecar: func(p string) error {
			return os.WriteFile(p+".sha256", []byte(strings.Repeat("ab", 32)+"  b.tar\n"), 0o644)
		}, want: SidecarMismatch},
		{name: "garbage sidecar", sidecar: func(p string) error {
			return os.WriteFile(p+".sha256", []byte("not a checksum\n"), 0o644)
		}, want: SidecarMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := standardFixture(t)
			p := writeFile(t, t.TempDir(), "b.tar", f.archive(layout.None, false), tc.sidecar != nil)
			if tc.sidecar != nil {
				if err := tc.sidecar(p); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := Check(context.Background(), p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Sidecar != tc.want || rep.OK != tc.wantOK {
				t.Errorf("sidecar %q OK %v, want %q %v\n%s", rep.Sidecar, rep.OK, tc.want, tc.wantOK, dumpProblems(rep))
			}
		})
	}
}

func TestBundleReadsStdin(t *testing.T) {
	f, _ := standardFixture(t)
	rep, err := Check(context.Background(), "-", Options{Stdin: bytes.NewReader(f.archive(layout.Gzip, false))})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Compression != string(layout.Gzip) || rep.Sidecar != SidecarMissing {
		t.Fatalf("OK %v compression %q sidecar %q\n%s", rep.OK, rep.Compression, rep.Sidecar, dumpProblems(rep))
	}
}

func TestBundleCannotStartWithoutAFile(t *testing.T) {
	dir := t.TempDir()
	for name, path := range map[string]string{"missing file": dir + "/nope.tar", "directory": dir} {
		t.Run(name, func(t *testing.T) {
			if _, err := Check(context.Background(), path, Options{}); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s", err, path)
			}
		})
	}
	if _, err := Check(context.Background(), "-", Options{}); err == nil {
		t.Error("stdin without a reader: no error")
	}
}

// BenchmarkBundle compares a whole-bundle check with sha256sum's work on
// the same file (the floor, before decompression).
func BenchmarkBundle(b *testing.B) {
	f := newFixture(b)
	var layers []int
	for range 8 {
		layers = append(layers, 8<<20)
	}
	f.tag(f.image(1, layers...), "src.example/big:1")
	for _, c := range []layout.Compression{layout.None, layout.Zstd, layout.Gzip} {
		data := f.archive(c, false)
		for _, sidecar := range []bool{false, true} {
			p := writeFile(b, b.TempDir(), "b"+extFor(c), data, sidecar)
			b.Run(fmt.Sprintf("%s/sidecar=%v", c, sidecar), func(b *testing.B) {
				b.SetBytes(64 << 20)
				for b.Loop() {
					rep, err := Check(context.Background(), p, Options{})
					if err != nil || !rep.OK {
						b.Fatal(err, rep)
					}
				}
			})
		}
	}
	b.Run("sha256 of the tar", func(b *testing.B) {
		data := f.archive(layout.None, false)
		b.SetBytes(64 << 20)
		for b.Loop() {
			sha256.Sum256(data)
		}
	})
}

func TestBundleStopsWhenCancelled(t *testing.T) {
	f, _ := standardFixture(t)
	p := writeFile(t, t.TempDir(), "b.tar", f.archive(layout.None, false), true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, p, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

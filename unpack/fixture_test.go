package unpack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/layout"
)

// fixture builds a bundle in memory, as bundle export would lay it out.
type fixture struct {
	t       testing.TB
	blobs   map[digest.Digest][]byte
	kinds   map[digest.Digest]int // 0 manifest, 1 config, 2 layer: the export order
	entries []ocispec.Descriptor
}

func newFixture(t testing.TB) *fixture {
	return &fixture{t: t, blobs: map[digest.Digest][]byte{}, kinds: map[digest.Digest]int{}}
}

func (f *fixture) add(mt string, data []byte, kind int) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
	f.blobs[d.Digest] = data
	f.kinds[d.Digest] = kind
	return d
}

func (f *fixture) json(mt string, v any, kind int) ocispec.Descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.add(mt, data, kind)
}

func randomData(seed int64, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// image adds an image manifest with its config and layers (shared first).
func (f *fixture) image(seed int64, layers, size int, shared ...ocispec.Descriptor) ocispec.Descriptor {
	ls := append([]ocispec.Descriptor(nil), shared...)
	for i := 0; i < layers; i++ {
		ls = append(ls, f.add(ocispec.MediaTypeImageLayer, randomData(seed*100+int64(i), size), 2))
	}
	cfg := f.json(ocispec.MediaTypeImageConfig, map[string]any{"architecture": "amd64", "os": "linux", "seed": seed}, 1)
	return f.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: ls,
	}, 0)
}

// index adds an index of one image per platform.
func (f *fixture) index(seed int64, plats ...string) (ocispec.Descriptor, []ocispec.Descriptor) {
	var children []ocispec.Descriptor
	for i, p := range plats {
		c := f.image(seed*10+int64(i), 1, 512)
		var pl ocispec.Platform
		fmt.Sscanf(p, "linux/%s", &pl.Architecture)
		pl.OS = "linux"
		c.Platform = &pl
		children = append(children, c)
	}
	return f.json(ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children,
	}, 0), children
}

// referrer adds an artifact manifest whose subject is subject.
func (f *fixture) referrer(subject ocispec.Descriptor, artifactType string, seed int64) ocispec.Descriptor {
	empty := f.add(ocispec.MediaTypeEmptyJSON, []byte("{}"), 1)
	layer := f.add("application/vnd.bundle.test.payload.v1+json", []byte(fmt.Sprintf(`{"seed":%d}`, seed)), 2)
	s := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	d := f.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: empty, Layers: []ocispec.Descriptor{layer}, Subject: &s,
	}, 0)
	f.entries = append(f.entries, d)
	return d
}

// name lists d in index.json under a full source reference.
func (f *fixture) name(d ocispec.Descriptor, ref string) {
	d.Platform = nil
	d.Annotations = map[string]string{ocispec.AnnotationRefName: ref, graph.AnnotationImageName: ref}
	f.entries = append(f.entries, d)
}

// drop removes a blob from the bundle (a sparse export).
func (f *fixture) drop(d digest.Digest) { delete(f.blobs, d) }

type writeOpts struct {
	comp      layout.Compression
	indexLast bool
	corrupt   digest.Digest // flip a byte of this blob in the archive
}

// bytes is the bundle as an archive.
func (f *fixture) bytes(o writeOpts) []byte {
	if o.comp == "" {
		o.comp = layout.None
	}
	var buf bytes.Buffer
	w, err := layout.NewWriter(&buf, o.comp, layout.WriterOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	put := func(name string, data []byte) {
		if err := w.WriteEntry(name, int64(len(data)), bytes.NewReader(data), false); err != nil {
			f.t.Fatal(err)
		}
	}
	if o.indexLast {
		// Another tool's order, and its oci-layout.
		put(layout.LayoutFile, layout.LayoutBytes())
	} else if err := w.WriteMetadata(f.indexJSON()); err != nil {
		f.t.Fatal(err)
	}
	for _, d := range f.order() {
		data := f.blobs[d]
		if d == o.corrupt {
			data = append([]byte(nil), data...)
			data[len(data)/2] ^= 0xff
		}
		put(layout.BlobPath(d), data)
	}
	if o.indexLast {
		put(layout.IndexFile, f.indexJSON())
	}
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
	return buf.Bytes()
}

// order is manifests, then configs, then layers; with index.json last,
// layers come first as other tools write them.
func (f *fixture) order() []digest.Digest {
	var ds []digest.Digest
	for d := range f.blobs {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool {
		if f.kinds[ds[i]] != f.kinds[ds[j]] {
			return f.kinds[ds[i]] < f.kinds[ds[j]]
		}
		return ds[i] < ds[j]
	})
	return ds
}

func (f *fixture) indexJSON() []byte {
	data, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: f.entries})
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

// file writes the archive and returns its path.
func (f *fixture) file(name string, o writeOpts) string {
	p := filepath.Join(f.t.TempDir(), name)
	if err := os.WriteFile(p, f.bytes(o), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// dir writes the bundle as an unpacked layout directory.
func (f *fixture) dir() string {
	dir := f.t.TempDir()
	write := func(name string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	write(layout.LayoutFile, layout.LayoutBytes())
	write(layout.IndexFile, f.indexJSON())
	for d, data := range f.blobs {
		write(layout.BlobPath(d), data)
	}
	return dir
}

// importTo runs Import against host with the test defaults.
func importTo(t testing.TB, ctx context.Context, file, target string, mod func(*Options)) (*Report, error, []string) {
	t.Helper()
	var notices []string
	opts := Options{Target: target, Remote: remote.Options{PlainHTTP: true}, Concurrency: 4,
		Notice: func(format string, args ...any) { notices = append(notices, fmt.Sprintf(format, args...)) }}
	if mod != nil {
		mod(&opts)
	}
	rep, err := Import(ctx, file, opts)
	return rep, err, notices
}

var _ = graph.IsIndex

func mustUnmarshal(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

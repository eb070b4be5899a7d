package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fixture is a layout built in memory, entry by entry, so that tests can
// drop, reorder or damage what they need before writing the archive.
type fixture struct {
	t       testing.TB
	names   []string
	data    map[string][]byte
	index   ocispec.Index
	noIndex bool // write no index.json
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{t: t, data: map[string][]byte{}}
	f.index = ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	f.index.SchemaVersion = 2
	return f
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

func (f *fixture) put(data []byte) digest.Digest {
	d := digest.FromBytes(data)
	name := layout.BlobPath(d)
	if _, ok := f.data[name]; !ok {
		f.names = append(f.names, name)
	}
	f.data[name] = data
	return d
}

func (f *fixture) blob(mt string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: f.put(data), Size: int64(len(data))}
}

func (f *fixture) json(mt string, v any) ocispec.Descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.blob(mt, data)
}

// image stores a config, the given layers and their manifest.
func (f *fixture) image(seed uint64, layers ...int) ocispec.Descriptor {
	cfg := f.json(ocispec.MediaTypeImageConfig, map[string]any{"architecture": "amd64", "os": "linux", "seed": seed})
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg}
	m.SchemaVersion = 2
	for i, n := range layers {
		m.Layers = append(m.Layers, f.blob(ocispec.MediaTypeImageLayerGzip, randomBytes(seed*100+uint64(i), n)))
	}
	return f.json(ocispec.MediaTypeImageManifest, m)
}

func (f *fixture) multi(platforms map[string]ocispec.Descriptor) ocispec.Descriptor {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	keys := make([]string, 0, len(platforms))
	for k := range platforms {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		d := platforms[k]
		os, arch, _ := strings.Cut(k, "/")
		d.Platform = &ocispec.Platform{OS: os, Architecture: arch}
		idx.Manifests = append(idx.Manifests, d)
	}
	return f.json(ocispec.MediaTypeImageIndex, idx)
}

// referrer stores an OCI 1.1 referrer (a signature-like artifact) of subject.
func (f *fixture) referrer(subject ocispec.Descriptor, artifactType string, seed uint64) ocispec.Descriptor {
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       ocispec.DescriptorEmptyJSON,
		Layers:       []ocispec.Descriptor{f.blob("application/vnd.dev.sigstore.bundle.v0.3+json", randomBytes(seed, 300))},
		Subject:      &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:  map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
	}
	m.SchemaVersion = 2
	f.blob(ocispec.MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Data)
	d := f.json(ocispec.MediaTypeImageManifest, m)
	d.ArtifactType = artifactType
	return d
}

func (f *fixture) tag(d ocispec.Descriptor, ref string) {
	d.Annotations = map[string]string{
		ocispec.AnnotationRefName:  ref,
		"io.containerd.image.name": ref,
	}
	f.index.Manifests = append(f.index.Manifests, d)
}

func (f *fixture) list(d ocispec.Descriptor) {
	f.index.Manifests = append(f.index.Manifests, d)
}

func (f *fixture) drop(d digest.Digest) {
	name := layout.BlobPath(d)
	delete(f.data, name)
	f.names = slices.DeleteFunc(f.names, func(n string) bool { return n == name })
}

// standard is a two-platform image with a signature on its index, and a
// second single-platform image sharing a layer.
type standard struct {
	amd, arm, idx, sig, single ocispec.Descriptor
}

func standardFixture(t testing.TB) (*fixture, standard) {
	f := newFixture(t)
	var s standard
	s.amd = f.image(1, 1000, 2000)
	s.arm = f.image(2, 1500)
	s.idx = f.multi(map[string]ocispec.Descriptor{"linux/amd64": s.amd, "linux/arm64": s.arm})
	s.sig = f.referrer(s.idx, "application/vnd.dev.sigstore.bundle.v0.3+json", 7)
	s.single = f.image(1, 1000) // same seed: shares the first layer and config with amd64
	f.tag(s.idx, "src.example:5000/team/app:1.0")
	f.list(s.sig)
	f.tag(s.single, "src.example:5000/team/tool:2")
	return f, s
}

type entry struct {
	name string
	data []byte
}

// entries lists what the archive holds, metadata first unless indexLast.
func (f *fixture) entries(indexLast bool) []entry {
	out := []entry{{layout.LayoutFile, layout.LayoutBytes()}}
	var idx []entry
	if !f.noIndex {
		data, err := json.Marshal(f.index)
		if err != nil {
			f.t.Fatal(err)
		}
		idx = []entry{{layout.IndexFile, data}}
	}
	if !indexLast {
		out = append(out, idx...)
	}
	for _, n := range f.names {
		out = append(out, entry{n, f.data[n]})
	}
	if indexLast {
		out = append(out, idx...)
	}
	return out
}

// archive writes the layout with the layout package's writer.
func (f *fixture) archive(c layout.Compression, indexLast bool) []byte {
	f.t.Helper()
	var buf bytes.Buffer
	w, err := layout.NewWriter(&buf, c, layout.WriterOptions{ChunkSize: 64 << 10})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range f.entries(indexLast) {
		if err := w.WriteEntry(e.name, int64(len(e.data)), bytes.NewReader(e.data), false); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
	return buf.Bytes()
}

// writeFile puts data at dir/name with a correct sha256sum sidecar.
func writeFile(t testing.TB, dir, name string, data []byte, sidecar bool) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if sidecar {
		sum := sha256.Sum256(data)
		line := hex.EncodeToString(sum[:]) + "  " + name + "\n"
		if err := os.WriteFile(p+".sha256", []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func extFor(c layout.Compression) string {
	switch c {
	case layout.Gzip:
		return ".tar.gz"
	case layout.Zstd:
		return ".tar.zst"
	}
	return ".tar"
}

// problemsWith returns the problems of severity sev whose message holds text.
func problemsWith(rep *Report, sev, text string) []Problem {
	var out []Problem
	for _, p := range rep.Problems {
		if p.Severity == sev && strings.Contains(p.Message, text) {
			out = append(out, p)
		}
	}
	return out
}

func dumpProblems(rep *Report) string {
	var b strings.Builder
	for _, p := range rep.Problems {
		b.WriteString("  " + p.Severity + ": " + p.Message + "\n")
	}
	return b.String()
}

var _ = graph.MaxManifestSize

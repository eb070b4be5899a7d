package unpack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// memBundle builds graphs in memory: manifests by digest and index.json.
type memBundle struct {
	t     testing.TB
	blobs map[digest.Digest][]byte
	index []ocispec.Descriptor
}

func newMem(t testing.TB) *memBundle { return &memBundle{t: t, blobs: map[digest.Digest][]byte{}} }

func (m *memBundle) put(mt string, v any) ocispec.Descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		m.t.Fatal(err)
	}
	d := digest.FromBytes(data)
	m.blobs[d] = data
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}
}

// manifest is an image manifest with one layer of its own, or an artifact
// on subject when subject is set.
func (m *memBundle) manifest(name string, subject *ocispec.Descriptor) ocispec.Descriptor {
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(name), Size: 1}
	mf := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{layer}, Subject: subject}
	if subject != nil {
		mf.ArtifactType = "application/vnd.example+" + name
	}
	return m.put(ocispec.MediaTypeImageManifest, mf)
}

func (m *memBundle) indexOf(children ...ocispec.Descriptor) ocispec.Descriptor {
	return m.put(ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children})
}

func (m *memBundle) name(d ocispec.Descriptor, ref string) {
	d.Annotations = map[string]string{graph.AnnotationImageName: ref, ocispec.AnnotationRefName: ref}
	m.index = append(m.index, d)
}

func (m *memBundle) list(d ocispec.Descriptor) { m.index = append(m.index, d) }

func (m *memBundle) graph() *graph.Graph { return m.graphWithin(graph.DefaultLimits) }

func (m *memBundle) graphWithin(limits graph.Limits) *graph.Graph {
	idx := &graph.Manifest{SchemaVersion: 2, MediaType: ocispec.MediaTypeImageIndex, Manifests: m.index}
	get := func(d ocispec.Descriptor) ([]byte, error) {
		if data, ok := m.blobs[d.Digest]; ok {
			return data, nil
		}
		return nil, graph.ErrAbsent
	}
	g, err := graph.Load(context.Background(), idx, get, limits)
	if err != nil {
		m.t.Fatal(err)
	}
	return g
}

func (m *memBundle) plan(target string) *plan {
	tg, err := parseTarget(target)
	if err != nil {
		m.t.Fatal(err)
	}
	p, err := newPlan(m.graph(), tg, func(string, ...any) {})
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

func TestLevelsPutChildrenBeforeParents(t *testing.T) {
	m := newMem(t)
	amd, arm, att := m.manifest("amd64", nil), m.manifest("arm64", nil), m.manifest("attestation", nil)
	idx := m.indexOf(amd, arm, att)
	other := m.manifest("other", nil)
	outer := m.indexOf(idx, other)
	name := map[digest.Digest]string{amd.Digest: "amd64", arm.Digest: "arm64", att.Digest: "att", idx.Digest: "index", other.Digest: "other", outer.Digest: "outer"}
	for _, tt := range []struct {
		name  string
		roots []ocispec.Descriptor
		want  [][]string
	}{
		{"single manifest", []ocispec.Descriptor{other}, [][]string{{"other"}}},
		{"index after its platforms", []ocispec.Descriptor{idx}, [][]string{{"amd64", "arm64", "att"}, {"index"}}},
		{"nested indexes", []ocispec.Descriptor{outer}, [][]string{{"amd64", "arm64", "att", "other"}, {"index"}, {"outer"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m.index = nil
			for _, r := range tt.roots {
				m.name(r, "src/app:"+name[r.Digest])
			}
			p := m.plan("reg:5000")
			var got [][]string
			for _, level := range p.repos["src/app"].levels {
				var names []string
				for _, n := range level {
					names = append(names, name[n.Desc.Digest])
				}
				slices.Sort(names)
				got = append(got, names)
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("levels = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPlanWorkGrowsLinearly builds the shapes that made the old planner
// quadratic or worse at 1x, 4x and 16x, and asserts the work counted (not
// the clock) grows in proportion.
func TestPlanWorkGrowsLinearly(t *testing.T) {
	shapes := []struct {
		name  string
		build func(m *memBundle, n int)
	}{
		{"images each with a signed SBOM", func(m *memBundle, n int) {
			for i := range n {
				img := m.manifest(fmt.Sprint("img", i), nil)
				m.name(img, fmt.Sprintf("src/r%d/app:%d", i%10, i))
				sbom := m.manifest(fmt.Sprint("sbom", i), &img)
				m.list(sbom)
				m.list(m.manifest(fmt.Sprint("sig", i), &sbom))
			}
		}},
		{"a long referrer chain", func(m *memBundle, n int) {
			subject := m.manifest("img", nil)
			m.name(subject, "src/app:1")
			for i := range n {
				r := m.manifest(fmt.Sprint("r", i), &subject)
				m.list(r)
				subject = r
			}
		}},
		{"index levels each listing the next twice", func(m *memBundle, n int) {
			// 2^60 paths through 60 levels: each level must count once.
			for c := range n / 50 {
				level := m.manifest(fmt.Sprint("leaf", c), nil)
				for i := range 60 {
					level = m.indexOf(level, level, m.manifest(fmt.Sprint("side", c, i), nil))
				}
				m.name(level, fmt.Sprintf("src/app:%d", c))
			}
		}},
	}
	for _, shape := range shapes {
		t.Run(shape.name, func(t *testing.T) {
			var work []int
			for _, k := range []int{1, 4, 16} {
				m := newMem(t)
				shape.build(m, 100*k)
				p := m.plan("reg:5000/mirror")
				work = append(work, p.planned)
			}
			for i, k := range []int{4, 16} {
				if ratio := float64(work[i+1]) / float64(work[0]); ratio > 1.3*float64(k) {
					t.Errorf("work %v: %dx the input costs %.1fx the work", work, k, ratio)
				}
			}
		})
	}
}

func TestPlanPlacesReferrersWhereTheirSubjectsLand(t *testing.T) {
	m := newMem(t)
	img := m.manifest("img", nil)
	m.name(img, "src.example/a/app:1")
	m.name(img, "src.example/b/app:1")
	sbom := m.manifest("sbom", &img)
	m.list(sbom)
	sig := m.manifest("sig", &sbom)
	m.list(sig)
	stray := m.manifest("stray", &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("elsewhere"), Size: 3})
	m.list(stray)
	p := m.plan("reg:5000")
	for _, repo := range []string{"a/app", "b/app"} {
		rp := p.repos[repo]
		if rp == nil || len(rp.referrers[img.Digest]) != 1 || len(rp.referrers[sbom.Digest]) != 1 {
			t.Fatalf("%s: referrers %v", repo, rp)
		}
	}
	if len(p.orphaned) != 1 || p.orphaned[0].Desc.Digest != stray.Digest {
		t.Fatalf("orphaned %v, want the stray referrer", p.orphaned)
	}
	for _, im := range p.images {
		if im.referrers != 2 {
			t.Errorf("%s: %d referrers, want 2", im.source, im.referrers)
		}
	}
}

// BenchmarkPlan plans the import of N small images, each with an SBOM and
// a signature on the SBOM, in N/10 repositories: the time per image must
// stay flat from 1,000 to 100,000 (the planner once grew with the cube).
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		m := newMem(b)
		for i := range n {
			img := m.manifest(fmt.Sprint("img", i), nil)
			m.name(img, fmt.Sprintf("src.example/r%d/app:%d", i%(n/10), i))
			sbom := m.manifest(fmt.Sprint("sbom", i), &img)
			m.list(sbom)
			m.list(m.manifest(fmt.Sprint("sig", i), &sbom))
		}
		g := m.graphWithin(graph.Limits{Manifests: 4 * n, ManifestBytes: 1 << 30, Depth: 64})
		tg, err := parseTarget("reg.internal:5000/mirror")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("images=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := newPlan(g, tg, func(string, ...any) {}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/image")
		})
	}
}

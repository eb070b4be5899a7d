package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"reflect"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/graph"
)

func TestPlanHasTheIssueShapeAtEverySize(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"smallest", MinSize},
		{"quick run", 200 << 20},
		{"make bench", 2 << 30},
		{"odd size", 2<<30 + 12345},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(tc.size, 1)
			if err != nil {
				t.Fatal(err)
			}
			c := p.Count()
			want := Counts{Repos: 10, Tags: 14, Images: 16, Docker: 2, Indexes: 3, GzipLayers: 29, TextLayers: 3,
				SharedAcrossRepos: c.SharedAcrossRepos, Referrers: 52, Nested: 16, LayerBytes: c.LayerBytes, PayloadBytes: c.PayloadBytes}
			if c != want {
				t.Errorf("counts = %+v\nwant     %+v", c, want)
			}
			if c.SharedAcrossRepos < 2 {
				t.Errorf("%d layers shared across repositories, want at least 2", c.SharedAcrossRepos)
			}
			if got := c.LayerBytes + c.PayloadBytes; got != tc.size {
				t.Errorf("layer+payload bytes = %d, want exactly %d", got, tc.size)
			}
			for i, l := range p.Layers {
				if l.Size <= 0 {
					t.Errorf("layer %d (%s) has size %d", i, l.Name, l.Size)
				}
			}
		})
	}
}

func TestPlanIsDeterministicPerSeed(t *testing.T) {
	a, _ := NewPlan(200<<20, 7)
	b, _ := NewPlan(200<<20, 7)
	c, _ := NewPlan(200<<20, 8)
	if !reflect.DeepEqual(a, b) {
		t.Error("two plans from the same seed differ")
	}
	if reflect.DeepEqual(a.Layers, c.Layers) {
		t.Error("plans from different seeds have the same layers")
	}
}

func TestPlanRefusesASizeTooSmallForItsLayers(t *testing.T) {
	for _, size := range []int64{0, -1, MinSize - 1} {
		if _, err := NewPlan(size, 1); err == nil {
			t.Errorf("NewPlan(%d) succeeded, want an error", size)
		}
	}
}

func TestPlanPutsEverySubjectBeforeItsReferrer(t *testing.T) {
	p, _ := NewPlan(MinSize, 1)
	for i, r := range p.Referrers {
		if r.Subject.Kind == NodeReferrer {
			if r.Subject.ID >= i {
				t.Errorf("referrer %d has subject referrer %d, which comes later", i, r.Subject.ID)
			}
			if p.Referrers[r.Subject.ID].ArtifactType != ArtifactSBOM || r.ArtifactType != ArtifactSignature {
				t.Errorf("nested referrer %d is %s on %s, want a signature on an SBOM", i, r.ArtifactType, p.Referrers[r.Subject.ID].ArtifactType)
			}
		}
		if r.Repo != p.RepoOf(r.Subject) {
			t.Errorf("referrer %d lives in %s, its subject in %s", i, r.Repo, p.RepoOf(r.Subject))
		}
	}
}

func TestLayerBytesAreSizedAndRepeatable(t *testing.T) {
	for _, tc := range []struct {
		name           string
		layer          Layer
		compressesOver float64 // gzip ratio the bytes must beat (0: must not compress)
	}{
		{"random", Layer{Kind: Random, Size: 1<<20 + 3, Seed: 42}, 0},
		{"text", Layer{Kind: Text, Size: 1<<20 + 3, Seed: 42}, 2},
		{"empty text", Layer{Kind: Text, Size: 0, Seed: 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := io.ReadAll(tc.layer.Open())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tc.layer.Open())
			if int64(len(a)) != tc.layer.Size || !bytes.Equal(a, b) {
				t.Fatalf("got %d bytes (equal twice: %v), want %d the same each time", len(a), bytes.Equal(a, b), tc.layer.Size)
			}
			if len(a) == 0 {
				return
			}
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			_, _ = zw.Write(a)
			_ = zw.Close()
			ratio := float64(len(a)) / float64(z.Len())
			if tc.compressesOver == 0 && ratio > 1.01 {
				t.Errorf("random bytes compress %.2fx: they would not stand for gzip layers", ratio)
			}
			if tc.compressesOver > 0 && ratio < tc.compressesOver {
				t.Errorf("text compresses only %.2fx, want over %.1fx", ratio, tc.compressesOver)
			}
		})
	}
}

func TestBuildWritesACompleteGraph(t *testing.T) {
	p, _ := NewPlan(2<<20, 3)
	ds, err := Build(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[digest.Digest]bool{}
	for _, b := range ds.Blobs {
		blobs[b.Desc.Digest] = true
		if got := digestOf(t, b); got != b.Desc.Digest {
			t.Errorf("blob %s streams bytes of digest %s", b.Desc.Digest, got)
		}
	}
	manifests := map[digest.Digest]string{} // digest → repo
	for _, m := range append(append([]Item(nil), ds.Manifests...), ds.Fallback...) {
		mf, err := graph.Parse(m.Desc.MediaType, m.Data)
		if err != nil {
			t.Fatalf("manifest %s: %v", m.Desc.Digest, err)
		}
		for _, c := range mf.Children() {
			if graph.IsManifest(c.MediaType) && manifests[c.Digest] != m.Repo {
				t.Errorf("manifest %s in %s: child manifest %s not pushed before it in that repository", m.Desc.Digest, m.Repo, c.Digest)
			}
			if !graph.IsManifest(c.MediaType) && !contains(ds.BlobRepos[c.Digest], m.Repo) {
				t.Errorf("manifest %s in %s: blob %s is not pushed to that repository (known: %v)", m.Desc.Digest, m.Repo, c.Digest, blobs[c.Digest])
			}
		}
		if mf.Subject != nil && manifests[mf.Subject.Digest] != m.Repo {
			t.Errorf("referrer %s: subject %s not pushed before it in %s", m.Desc.Digest, mf.Subject.Digest, m.Repo)
		}
		manifests[m.Desc.Digest] = m.Repo
	}
	// Subjects: 16 images, 3 indexes, 16 SBOMs.
	if len(ds.Fallback) != 35 {
		t.Errorf("%d fallback indexes, want 35 (one per subject)", len(ds.Fallback))
	}
	if len(ds.Refs) != 14 {
		t.Errorf("%d references, want 14", len(ds.Refs))
	}
	if ds.UniqueBytes < p.Size || ds.UniqueBytes > p.Size+128<<10 {
		t.Errorf("unique bytes %d, want about %d", ds.UniqueBytes, p.Size)
	}
	again, _ := Build(context.Background(), p)
	if !reflect.DeepEqual(ds.Manifests, again.Manifests) {
		t.Error("building the same plan twice gave different manifests")
	}
}

func digestOf(t *testing.T, it Item) digest.Digest {
	t.Helper()
	d, err := digest.Canonical.FromReader(it.Open())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

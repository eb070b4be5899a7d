// Package roundtrip holds the tests that carry images from a source registry
// through a bundle into a target registry and compare what arrived.
package roundtrip

import (
	"context"
	"fmt"
	"github.com/bundle-dev/bundle/internal/graph"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/pack"
	"github.com/bundle-dev/bundle/unpack"
)

// kinds are the two registry behaviours every round trip must survive: with
// and without the referrers API.
var kinds = []struct {
	name string
	new  func(testing.TB) *testregistry.Registry
}{
	{"distribution", testregistry.NewDistribution},
	{"referrersAPI", testregistry.NewReferrersAPI},
}

// seeded is what a case put on the source: the references to export, and
// for each repository and manifest digest the referrers the target must list.
type seeded struct {
	refs      []string
	repoTags  map[string]string          // "repo:tag" -> manifest digest
	referrers map[string][]digest.Digest // "repo@subject" -> referrer digests
	cosign    map[string]digest.Digest   // "repo:cosign-tag" -> digest
	export    func(o *pack.Options)      // option changes for the export
	imp       func(o *unpack.Options)    // option changes for the import
}

func newSeeded() *seeded {
	return &seeded{repoTags: map[string]string{}, referrers: map[string][]digest.Digest{}, cosign: map[string]digest.Digest{}}
}

func (s *seeded) image(r *testregistry.Registry, repo, tag string, d ocispec.Descriptor) {
	s.refs = append(s.refs, r.Ref(repo, tag))
	s.repoTags[repo+":"+tag] = d.Digest.String()
}

func (s *seeded) referrer(repo string, subject, ref ocispec.Descriptor) {
	k := repo + "@" + subject.Digest.String()
	s.referrers[k] = append(s.referrers[k], ref.Digest)
}

var cases = []struct {
	name string
	seed func(t *testing.T, r *testregistry.Registry) *seeded
}{
	{"single image", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		s.image(r, "team/app", "1.0", r.PushImage(t, "team/app", "1.0", testregistry.ImageSpec{Seed: 1, Gzip: true}).Desc)
		return s
	}},
	{"three-platform index", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		idx := r.PushIndex(t, "team/multi", "2.0", []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}, testregistry.ImageSpec{Seed: 2}, false)
		s.image(r, "team/multi", "2.0", idx.Desc)
		return s
	}},
	{"referrers three deep", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		img := r.PushImage(t, "team/app", "1.0", testregistry.ImageSpec{Seed: 3})
		sbom := r.PushReferrer(t, "team/app", img.Desc, "application/spdx+json", map[string]string{"n": "sbom"})
		sig := r.PushReferrer(t, "team/app", sbom, "application/vnd.dev.cosign.artifact.sig.v1+json", map[string]string{"n": "sig"})
		counter := r.PushReferrer(t, "team/app", sig, "application/vnd.dev.cosign.artifact.sig.v1+json", map[string]string{"n": "counter"})
		s.image(r, "team/app", "1.0", img.Desc)
		s.referrer("team/app", img.Desc, sbom)
		s.referrer("team/app", sbom, sig)
		s.referrer("team/app", sig, counter)
		return s
	}},
	{"referrers of index and platform", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		idx := r.PushIndex(t, "team/multi", "2.0", []string{"linux/amd64", "linux/arm64"}, testregistry.ImageSpec{Seed: 4}, false)
		onIndex := r.PushReferrer(t, "team/multi", idx.Desc, "application/spdx+json", map[string]string{"n": "index"})
		onChild := r.PushReferrer(t, "team/multi", idx.Children[1].Desc, "application/spdx+json", map[string]string{"n": "arm64"})
		s.image(r, "team/multi", "2.0", idx.Desc)
		s.referrer("team/multi", idx.Desc, onIndex)
		s.referrer("team/multi", idx.Children[1].Desc, onChild)
		return s
	}},
	{"cosign tags", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		img := r.PushImage(t, "team/signed", "1.0", testregistry.ImageSpec{Seed: 5})
		sig := r.PushCosign(t, "team/signed", img.Desc, "sig")
		att := r.PushCosign(t, "team/signed", img.Desc, "att")
		s.image(r, "team/signed", "1.0", img.Desc)
		tag := strings.Replace(img.Desc.Digest.String(), ":", "-", 1)
		s.cosign["team/signed:"+tag+".sig"] = sig.Digest
		s.cosign["team/signed:"+tag+".att"] = att.Digest
		return s
	}},
	{"buildx attestations, one platform, rewritten index", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		idx := r.PushIndex(t, "team/buildx", "3.0", []string{"linux/amd64", "linux/arm64"}, testregistry.ImageSpec{Seed: 6}, true)
		s.refs = append(s.refs, r.Ref("team/buildx", "3.0"))
		// The tag now names a new index of the kept children; the
		// platform manifest and its attestation keep their digests.
		s.repoTags["team/buildx@"+idx.Children[0].Desc.Digest.String()] = idx.Children[0].Desc.Digest.String()
		s.repoTags["team/buildx@"+idx.Attestations[0].Digest.String()] = idx.Attestations[0].Digest.String()
		s.export = func(o *pack.Options) { o.Platforms = []string{"linux/amd64"} }
		s.imp = func(o *unpack.Options) { o.SparseIndex = "rewrite" }
		return s
	}},
	{"docker schema2", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		s.image(r, "legacy/app", "old", r.PushImage(t, "legacy/app", "old", testregistry.ImageSpec{Seed: 7, Docker: true, Gzip: true}).Desc)
		return s
	}},
	{"helm chart and OCI artifact", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		chart := r.PushImage(t, "charts/app", "0.1.0", testregistry.ImageSpec{Seed: 30, Layers: 1, Gzip: true, ArtifactType: testregistry.MediaTypeHelmConfig})
		art := r.PushImage(t, "things/policy", "v1", testregistry.ImageSpec{Seed: 31, Layers: 1, ArtifactType: "application/vnd.example.policy.v1"})
		s.image(r, "charts/app", "0.1.0", chart.Desc)
		s.image(r, "things/policy", "v1", art.Desc)
		return s
	}},
	{"six images sharing layers", func(t *testing.T, r *testregistry.Registry) *seeded {
		s := newSeeded()
		base := r.PushImage(t, "base/os", "1", testregistry.ImageSpec{Seed: 8, Layers: 2, LayerSize: 64 << 10})
		s.image(r, "base/os", "1", base.Desc)
		for i, repo := range []string{"apps/a", "apps/b", "apps/c", "tools/d", "tools/e"} {
			img := r.PushImage(t, repo, "v1", testregistry.ImageSpec{Seed: int64(10 + i), Layers: 1, Shared: base.Layers})
			s.image(r, repo, "v1", img.Desc)
		}
		return s
	}},
}

func TestExportImportRoundTrip(t *testing.T) {
	for _, tc := range cases {
		for _, src := range kinds {
			for _, dst := range kinds {
				for _, ext := range []string{".tar", ".tar.zst"} {
					name := tc.name + "/" + src.name + "->" + dst.name + "/" + ext
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						roundTrip(t, tc.seed, src.new(t), dst.new(t), ext)
					})
				}
			}
		}
	}
}

func roundTrip(t *testing.T, seed func(*testing.T, *testregistry.Registry) *seeded, src, dst *testregistry.Registry, ext string) {
	ctx := context.Background()
	s := seed(t, src)
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle"+ext)
	eo := pack.Options{Output: out, CacheDir: filepath.Join(dir, "cache"), Remote: remote.Options{PlainHTTP: true}}
	if s.export != nil {
		s.export(&eo)
	}
	if _, err := pack.Export(ctx, s.refs, eo); err != nil {
		t.Fatalf("export %v: %v", s.refs, err)
	}
	io := unpack.Options{Target: dst.Host + "/mirror", Remote: remote.Options{PlainHTTP: true}}
	if s.imp != nil {
		s.imp(&io)
	}
	rep, err := unpack.Import(ctx, out, io)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	wantMode := "tag"
	if dst.HasReferrersAPI() {
		wantMode = "api"
	}
	if len(s.referrers) > 0 && rep.ReferrersMode != wantMode {
		t.Errorf("referrers mode %q, want %q on %s", rep.ReferrersMode, wantMode, dst.Host)
	}
	for key, want := range s.repoTags {
		repo, ref := splitKey(key)
		d, _, ok := dst.GetManifest(t, "mirror/"+repo, ref)
		if !ok {
			t.Errorf("target lacks mirror/%s", key)
			continue
		}
		if d.Digest.String() != want {
			t.Errorf("mirror/%s has digest %s, want %s (digests must not change)", key, d.Digest, want)
		}
	}
	for key, want := range s.referrers {
		repo, subject := splitKey(key)
		var got []digest.Digest
		for _, d := range dst.ListReferrers(t, "mirror/"+repo, digest.Digest(subject)) {
			got = append(got, d.Digest)
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("target lists referrers %v of mirror/%s, want %s among them", got, key, w)
			}
		}
	}
	for key, want := range s.cosign {
		repo, tag := splitKey(key)
		d, _, ok := dst.GetManifest(t, "mirror/"+repo, tag)
		if !ok || d.Digest != want {
			t.Errorf("cosign tag mirror/%s = %s (found %v), want %s", key, d.Digest, ok, want)
		}
	}

	// A second import of the same bundle changes nothing and uploads nothing.
	dst.ResetCounts()
	if _, err := unpack.Import(ctx, out, io); err != nil {
		t.Fatalf("second import: %v", err)
	}
	if n := dst.Count("", "upload"); n != 0 {
		t.Errorf("second import made %d upload requests, want 0", n)
	}
	// Nor any manifest: the images are found in place (a sparse index the
	// target would refuse is not even offered, its rewrite is there).
	if n := dst.Count("PUT", "manifest"); n != 0 {
		t.Errorf("second import made %d manifest PUTs, want 0", n)
	}
}

// splitKey splits "repo:tag" or "repo@digest".
func splitKey(key string) (repo, ref string) {
	if i := strings.Index(key, "@"); i >= 0 {
		return key[:i], key[i+1:]
	}
	i := strings.LastIndex(key, ":")
	return key[:i], key[i+1:]
}

// The short-lived OCI artifact manifest (image-spec 1.1 release candidates)
// still exists in registries: it must travel, subject and all.
func TestRoundTripArtifactManifestReferrer(t *testing.T) {
	// distribution refuses the media type outright (MANIFEST_INVALID), so
	// only the registry that stores it can be the source.
	for _, src := range kinds[1:] {
		t.Run(src.name, func(t *testing.T) {
			ctx := context.Background()
			r := src.new(t)
			img := r.PushImage(t, "team/app", "1.0", testregistry.ImageSpec{Seed: 40})
			blob := r.PushBlob(t, "team/app", "application/vnd.example.note", []byte("reviewed"))
			body := fmt.Sprintf(`{"mediaType":%q,"artifactType":"application/vnd.example.review","blobs":[{"mediaType":%q,"digest":%q,"size":%d}],"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
				graph.MediaTypeArtifactManifest, blob.MediaType, blob.Digest, blob.Size, img.Desc.MediaType, img.Desc.Digest, img.Desc.Size)
			art := r.PushManifest(t, "team/app", "", graph.MediaTypeArtifactManifest, []byte(body))
			dir := t.TempDir()
			out := filepath.Join(dir, "b.tar.zst")
			if _, err := pack.Export(ctx, []string{r.Ref("team/app", "1.0")}, pack.Options{Output: out, CacheDir: filepath.Join(dir, "cache"), Remote: remote.Options{PlainHTTP: true}}); err != nil {
				t.Fatalf("export: %v", err)
			}
			dst := testregistry.NewReferrersAPI(t)
			if _, err := unpack.Import(ctx, out, unpack.Options{Target: dst.Host, Remote: remote.Options{PlainHTTP: true}}); err != nil {
				t.Fatalf("import: %v", err)
			}
			got, _, ok := dst.GetManifest(t, "team/app", art.Digest.String())
			if !ok || got.Digest != art.Digest {
				t.Fatalf("artifact manifest %s missing on the target (found %v)", art.Digest, ok)
			}
			var listed []digest.Digest
			for _, d := range dst.ListReferrers(t, "team/app", img.Desc.Digest) {
				listed = append(listed, d.Digest)
			}
			if !slices.Contains(listed, art.Digest) {
				t.Errorf("target lists referrers %v, want the artifact manifest %s", listed, art.Digest)
			}
		})
	}
}

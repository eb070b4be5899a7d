package referrers

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/testregistry"
)

func newPublisher(t *testing.T, mode Mode) *Publisher {
	resolver, client := clients(t)
	return &Publisher{Resolver: resolver, Client: client, Mode: mode}
}

// The index Publish writes follows the referrers tag schema: an OCI index,
// schemaVersion 2, each entry with mediaType, digest, size, artifactType
// and the manifest's annotations.
func TestPublishTagModeWritesSpecFallbackIndex(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 10})
			sbom := pushBareReferrer(t, r, "app", img.Desc, typeSBOM, map[string]string{"org.example/kind": "sbom"})
			sig := pushBareReferrer(t, r, "app", img.Desc, typeSig, nil)
			// What import knows of a referrer may be just its digest and size:
			// Publish reads the rest from the pushed manifest.
			sigBare := ocispec.Descriptor{MediaType: sig.MediaType, Digest: sig.Digest, Size: sig.Size}

			mode, err := newPublisher(t, ModeTag).Publish(context.Background(), repoOf(r, "app"), img.Desc, []ocispec.Descriptor{sbom, sigBare})
			if err != nil {
				t.Fatal(err)
			}
			if mode != ModeTag {
				t.Errorf("mode = %q, want tag", mode)
			}
			idx, desc := fallbackIndex(t, r, "app", img.Desc)
			if idx == nil {
				t.Fatal("no fallback index written")
			}
			if desc.MediaType != ocispec.MediaTypeImageIndex || idx.MediaType != ocispec.MediaTypeImageIndex || idx.SchemaVersion != 2 {
				t.Errorf("fallback index: served as %q, mediaType %q, schemaVersion %d; want OCI index, schemaVersion 2", desc.MediaType, idx.MediaType, idx.SchemaVersion)
			}
			want := []ocispec.Descriptor{sbom, sig}
			if len(idx.Manifests) != len(want) {
				t.Fatalf("fallback index lists %d entries, want %d: %+v", len(idx.Manifests), len(want), idx.Manifests)
			}
			for i, w := range want {
				g := idx.Manifests[i]
				if g.MediaType != ocispec.MediaTypeImageManifest || g.Digest != w.Digest || g.Size != w.Size || g.ArtifactType != w.ArtifactType || !maps.Equal(g.Annotations, w.Annotations) {
					t.Errorf("entry %d = %+v, want %+v", i, g, w)
				}
			}
			listed := r.ListReferrers(t, "app", img.Desc.Digest)
			if len(listed) != 2 {
				t.Errorf("registry lists %d referrers after Publish, want 2", len(listed))
			}
		})
	}
}

func TestPublishMergesForeignFallbackEntryOnce(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 11})
	foreign := pushListedReferrer(t, r, "app", img.Desc, "application/x-foreign", map[string]string{"by": "someone"}) // creates the index
	ours := pushBareReferrer(t, r, "app", img.Desc, typeSBOM, map[string]string{"by": "bundle"})
	p := newPublisher(t, ModeTag)
	ctx := context.Background()
	refs := []ocispec.Descriptor{ours, foreign} // foreign again: must not be listed twice

	if _, err := p.Publish(ctx, repoOf(r, "app"), img.Desc, refs); err != nil {
		t.Fatal(err)
	}
	idx, first := fallbackIndex(t, r, "app", img.Desc)
	var digests []string
	for _, d := range idx.Manifests {
		digests = append(digests, d.Digest.String())
	}
	want := []string{foreign.Digest.String(), ours.Digest.String()}
	if !slices.Equal(digests, want) {
		t.Fatalf("fallback index lists %v, want %v (foreign kept first, ours once)", digests, want)
	}
	if idx.Manifests[0].Annotations["by"] != "someone" {
		t.Errorf("foreign entry changed: %+v", idx.Manifests[0])
	}

	r.ResetCounts()
	if _, err := p.Publish(ctx, repoOf(r, "app"), img.Desc, refs); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(http.MethodPut, "manifest"); n != 0 {
		t.Errorf("second Publish made %d manifest PUTs, want 0", n)
	}
	if _, again := fallbackIndex(t, r, "app", img.Desc); again.Digest != first.Digest {
		t.Errorf("second Publish changed the index from %s to %s", first.Digest, again.Digest)
	}
}

func TestPublishAutoPicksAPIOrTag(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 12})
			ref := pushBareReferrer(t, r, "app", img.Desc, typeSBOM, map[string]string{"k": "v"})
			p := newPublisher(t, ModeAuto)
			ctx := context.Background()

			mode, err := p.Publish(ctx, repoOf(r, "app"), img.Desc, []ocispec.Descriptor{ref})
			if err != nil {
				t.Fatal(err)
			}
			want := ModeTag
			if r.HasReferrersAPI() {
				want = ModeAPI
			}
			if mode != want {
				t.Fatalf("auto chose %q, want %q", mode, want)
			}
			hasTag := slices.Contains(r.Tags(t, "app"), graph.FallbackTag(img.Desc.Digest))
			if hasTag != (want == ModeTag) {
				t.Errorf("fallback tag present = %v in mode %q", hasTag, mode)
			}
			if got := r.ListReferrers(t, "app", img.Desc.Digest); len(got) != 1 || got[0].Digest != ref.Digest {
				t.Errorf("registry lists %+v, want %s", got, ref.Digest)
			}

			// The probe is cached per host.
			probes := r.Count(http.MethodGet, "referrers")
			if _, err := p.HasAPI(ctx, repoOf(r, "other")); err != nil {
				t.Fatal(err)
			}
			if n := r.Count(http.MethodGet, "referrers"); n != probes {
				t.Errorf("HasAPI probed again (%d referrers GETs, had %d)", n, probes)
			}
		})
	}
}

func TestPublishAPIModeFailsWhenRegistryDoesNotList(t *testing.T) {
	tests := []struct {
		name    string
		new     func(testing.TB) *testregistry.Registry
		pushed  bool
		wantErr string
	}{
		{"registry without the API", testregistry.NewDistribution, true, "no referrers API"},
		{"referrer not pushed", testregistry.NewReferrersAPI, false, "does not list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.new(t)
			img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 13})
			ref := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.Config.Digest, Size: 1, ArtifactType: typeSBOM}
			if tt.pushed {
				ref = pushBareReferrer(t, r, "app", img.Desc, typeSBOM, nil)
			}
			_, err := newPublisher(t, ModeAPI).Publish(context.Background(), repoOf(r, "app"), img.Desc, []ocispec.Descriptor{ref})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Publish error = %v, want one saying %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "--referrers-mode") {
				t.Errorf("error %q does not say what to do", err)
			}
		})
	}
}

func TestHasAPIErrorsOnServerFailure(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			up := testregistry.NewReferrersAPI(t)
			proxy := testregistry.NewProxy(t, up, testregistry.Faults{Status: status, StatusTimes: 1000})
			_, err := newPublisher(t, ModeAuto).HasAPI(context.Background(), repoOf(proxy, "app"))
			if err == nil {
				t.Fatalf("HasAPI through a proxy answering %d succeeded", status)
			}
			if !strings.Contains(err.Error(), proxy.Host) {
				t.Errorf("error %q does not name the registry %s", err, proxy.Host)
			}
		})
	}
}

func TestTagPointsTagAtPushedManifest(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 14})
			sig := pushBareReferrer(t, r, "app", img.Desc, typeSig, nil)
			tag := graph.FallbackTag(img.Desc.Digest) + ".sig"
			p := newPublisher(t, ModeAuto)
			ctx := context.Background()

			if err := p.Tag(ctx, repoOf(r, "app"), tag, sig); err != nil {
				t.Fatal(err)
			}
			got, _, ok := r.GetManifest(t, "app", tag)
			if !ok || got.Digest != sig.Digest {
				t.Fatalf("tag %s -> %s (found %v), want %s", tag, got.Digest, ok, sig.Digest)
			}

			r.ResetCounts()
			if err := p.Tag(ctx, repoOf(r, "app"), tag, sig); err != nil {
				t.Fatal(err)
			}
			if n := r.Count(http.MethodPut, "manifest"); n != 0 {
				t.Errorf("re-tagging made %d PUTs, want 0", n)
			}
		})
	}
}

func TestTagRefusesBadInput(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 15})
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.Config.Digest, Size: img.Config.Size}
	tests := []struct {
		name, repo, tag string
		desc            ocispec.Descriptor
	}{
		{"manifest not pushed", repoOf(r, "app"), "x", missing},
		{"invalid tag", repoOf(r, "app"), "-bad:tag", img.Desc},
		{"repo with tag", repoOf(r, "app") + ":1.0", "x", img.Desc},
		{"invalid digest", repoOf(r, "app"), "x", ocispec.Descriptor{Digest: "sha256:nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := newPublisher(t, ModeAuto).Tag(context.Background(), tt.repo, tt.tag, tt.desc); err == nil {
				t.Fatal("Tag succeeded, want an error")
			}
			if slices.Contains(r.Tags(t, "app"), tt.tag) {
				t.Errorf("tag %q was created", tt.tag)
			}
		})
	}
}

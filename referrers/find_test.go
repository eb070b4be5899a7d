package referrers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
)

const (
	typeSBOM = "application/spdx+json"
	typeSig  = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

func byDigest(rs []Referrer) map[digest.Digest]Referrer {
	out := map[digest.Digest]Referrer{}
	for _, r := range rs {
		out[r.Descriptor.Digest] = r
	}
	return out
}

func TestFindListsReferrersWithTypeAndAnnotations(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 1})
			sbom := pushListedReferrer(t, r, "app", img.Desc, typeSBOM, map[string]string{"kind": "sbom"})
			sig := pushListedReferrer(t, r, "app", img.Desc, typeSig, map[string]string{"kind": "sig"})
			resolver, client := clients(t)

			got, err := (&Finder{Resolver: resolver, Client: client}).Find(context.Background(), repoOf(r, "app"), img.Desc)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("Find returned %d referrers, want 2: %+v", len(got), got)
			}
			wantVia := ViaTag
			if r.HasReferrersAPI() {
				wantVia = ViaAPI
			}
			found := byDigest(got)
			for _, want := range []ocispec.Descriptor{sbom, sig} {
				g, ok := found[want.Digest]
				if !ok {
					t.Fatalf("referrer %s (%s) not found", want.Digest, want.ArtifactType)
				}
				if g.Descriptor.ArtifactType != want.ArtifactType {
					t.Errorf("artifactType of %s = %q, want %q", want.Digest, g.Descriptor.ArtifactType, want.ArtifactType)
				}
				if !maps.Equal(g.Descriptor.Annotations, want.Annotations) {
					t.Errorf("annotations of %s = %v, want %v", want.Digest, g.Descriptor.Annotations, want.Annotations)
				}
				if g.Descriptor.MediaType != ocispec.MediaTypeImageManifest || g.Descriptor.Size != want.Size {
					t.Errorf("descriptor of %s = %q/%d, want %q/%d", want.Digest, g.Descriptor.MediaType, g.Descriptor.Size, ocispec.MediaTypeImageManifest, want.Size)
				}
				if g.Subject != img.Desc.Digest || g.Via != wantVia || g.Tag != "" {
					t.Errorf("referrer %s: subject %s via %q tag %q, want %s via %q no tag", want.Digest, g.Subject, g.Via, g.Tag, img.Desc.Digest, wantVia)
				}
			}
		})
	}
}

func TestFindThenFilterByArtifactType(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 2})
			sbom := pushListedReferrer(t, r, "app", img.Desc, typeSBOM, map[string]string{"n": "1"})
			pushListedReferrer(t, r, "app", img.Desc, typeSig, map[string]string{"n": "2"})
			resolver, client := clients(t)

			all, err := (&Finder{Resolver: resolver, Client: client}).Find(context.Background(), repoOf(r, "app"), img.Desc)
			if err != nil {
				t.Fatal(err)
			}
			got := Filter(all, []string{typeSBOM})
			if len(got) != 1 || got[0].Descriptor.Digest != sbom.Digest {
				t.Fatalf("Filter(%s) = %+v, want only %s", typeSBOM, got, sbom.Digest)
			}
		})
	}
}

func TestFindNoReferrersIsEmptyNotError(t *testing.T) {
	for _, reg := range registries {
		for _, cosign := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cosign=%v", reg.name, cosign), func(t *testing.T) {
				r := reg.new(t)
				img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 3})
				resolver, client := clients(t)
				got, err := (&Finder{Resolver: resolver, Client: client, Cosign: cosign}).Find(context.Background(), repoOf(r, "app"), img.Desc)
				if err != nil {
					t.Fatalf("Find on an image without referrers: %v", err)
				}
				if len(got) != 0 {
					t.Fatalf("Find returned %+v, want none", got)
				}
			})
		}
	}
}

func TestFindCosignTags(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 4})
			sig := r.PushCosign(t, "app", img.Desc, "sig")
			att := r.PushCosign(t, "app", img.Desc, "att")
			resolver, client := clients(t)
			ctx := context.Background()

			without, err := (&Finder{Resolver: resolver, Client: client}).Find(ctx, repoOf(r, "app"), img.Desc)
			if err != nil {
				t.Fatal(err)
			}
			if len(without) != 0 {
				t.Errorf("Find without Cosign returned %+v, want none", without)
			}

			got, err := (&Finder{Resolver: resolver, Client: client, Cosign: true}).Find(ctx, repoOf(r, "app"), img.Desc)
			if err != nil {
				t.Fatal(err)
			}
			found := byDigest(got)
			tag := graph.FallbackTag(img.Desc.Digest)
			for _, want := range []struct {
				desc              ocispec.Descriptor
				tag, artifactType string
			}{
				{sig, tag + ".sig", testregistry.MediaTypeCosignSig},
				{att, tag + ".att", testregistry.MediaTypeDSSE},
			} {
				g, ok := found[want.desc.Digest]
				if !ok {
					t.Fatalf("cosign %s (%s) not found in %+v", want.tag, want.desc.Digest, got)
				}
				if g.Via != ViaCosign || g.Tag != want.tag || g.Subject != img.Desc.Digest {
					t.Errorf("cosign referrer = via %q tag %q subject %s, want cosign %q %s", g.Via, g.Tag, g.Subject, want.tag, img.Desc.Digest)
				}
				if g.Descriptor.ArtifactType != want.artifactType {
					t.Errorf("artifactType of %s = %q, want %q", want.tag, g.Descriptor.ArtifactType, want.artifactType)
				}
			}
			if len(got) != 2 {
				t.Errorf("Find returned %d referrers, want 2 (no .sbom tag exists)", len(got))
			}
		})
	}
}

// A fallback index is a listing: neither it, nor the subject, nor a stale
// entry for a manifest that does not refer to the subject is a referrer.
func TestFindReturnsOnlyReferrersOfSubject(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 5})
	other := r.PushImage(t, "app", "2.0", testregistry.ImageSpec{Seed: 6})
	ref := pushListedReferrer(t, r, "app", img.Desc, typeSBOM, nil)
	stale := pushBareReferrer(t, r, "app", other.Desc, "", nil) // refers to another image
	idx, idxDesc := fallbackIndex(t, r, "app", img.Desc)
	if idx == nil {
		t.Fatal("seeding left no fallback index")
	}
	bare := func(d ocispec.Descriptor) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
	}
	idx.Manifests = append(idx.Manifests, bare(stale), bare(img.Desc))
	r.PushManifest(t, "app", graph.FallbackTag(img.Desc.Digest), ocispec.MediaTypeImageIndex, mustJSON(t, idx))
	resolver, client := clients(t)

	got, err := (&Finder{Resolver: resolver, Client: client, Cosign: true}).Find(context.Background(), repoOf(r, "app"), img.Desc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Descriptor.Digest != ref.Digest {
		t.Fatalf("Find = %+v, want only %s (index was %s)", got, ref.Digest, idxDesc.Digest)
	}
	for _, g := range got {
		if graph.IsIndex(g.Descriptor.MediaType) {
			t.Errorf("Find returned index %s as a referrer", g.Descriptor.Digest)
		}
	}
}

// An entry that lacks artifactType (older clients wrote such fallback
// indexes) gets it, and the annotations, from the manifest.
func TestFindCompletesEntriesLackingArtifactType(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 7})
	ref := pushBareReferrer(t, r, "app", img.Desc, typeSBOM, map[string]string{"a": "b"})
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{MediaType: ref.MediaType, Digest: ref.Digest, Size: ref.Size}}}
	idx.SchemaVersion = 2
	r.PushManifest(t, "app", graph.FallbackTag(img.Desc.Digest), ocispec.MediaTypeImageIndex, mustJSON(t, idx))
	resolver, client := clients(t)

	got, err := (&Finder{Resolver: resolver, Client: client}).Find(context.Background(), repoOf(r, "app"), img.Desc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("Find = %+v, want one referrer", got)
	}
	if got[0].Descriptor.ArtifactType != typeSBOM || got[0].Descriptor.Annotations["a"] != "b" {
		t.Errorf("completed descriptor = %+v, want artifactType %s and annotation a=b", got[0].Descriptor, typeSBOM)
	}
}

func TestFindHandsOverTheManifestsItRead(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 4})
	sig := r.PushCosign(t, "app", img.Desc, "sig")
	resolver, client := clients(t)
	var mu sync.Mutex
	handed := map[digest.Digest][]byte{}
	f := &Finder{Resolver: resolver, Client: client, Cosign: true, Fetched: func(d ocispec.Descriptor, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		handed[d.Digest] = data
	}}
	if _, err := f.Find(context.Background(), repoOf(r, "app"), img.Desc); err != nil {
		t.Fatal(err)
	}
	data, ok := handed[sig.Digest]
	if !ok {
		t.Fatalf("the cosign signature %s was read but not handed over (got %d)", sig.Digest, len(handed))
	}
	if digest.FromBytes(data) != sig.Digest {
		t.Errorf("handed-over bytes hash to %s, want %s", digest.FromBytes(data), sig.Digest)
	}
}

// Find lists each repository's tags once and asks for no
// fallback or cosign tag that is not there, yet finds those that are.
func TestFindAsksOnlyForTagsTheRegistryLists(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			signed := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 21})
			sig := r.PushCosign(t, "app", signed.Desc, "sig")
			plain := r.PushImage(t, "app", "2.0", testregistry.ImageSpec{Seed: 22})
			f := finder(t, true)
			ctx := context.Background()

			r.ResetCounts()
			got, err := f.Find(ctx, repoOf(r, "app"), signed.Desc)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := byDigest(got)[sig.Digest]; !ok || len(got) != 1 {
				t.Errorf("Find = %+v, want the cosign signature %s alone", got, sig.Digest)
			}
			none, err := f.Find(ctx, repoOf(r, "app"), plain.Desc)
			if err != nil {
				t.Fatal(err)
			}
			if len(none) != 0 {
				t.Errorf("Find of an unsigned image = %+v, want none", none)
			}
			if n := r.Count("GET", "tags"); n != 1 {
				t.Errorf("%d tag listings, want 1 for two Finds in one repository", n)
			}
			// The signature: one HEAD (resolve) and one GET. Nothing for the
			// five tags that are not there (.att, .sbom, and all three of
			// the unsigned image), nor the two fallback tags.
			if n := r.Count("HEAD", "manifest") + r.Count("GET", "manifest"); n > 2 {
				t.Errorf("%d manifest requests, want at most 2: tags absent from the listing were asked for", n)
			}
		})
	}
}

func TestIsDigestTag(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for tag, want := range map[string]bool{
		"sha256-" + hex:           true,
		"sha256-" + hex + ".sig":  true,
		"sha256-" + hex + ".sbom": true,
		"sha256-abc":              false,
		"latest":                  false,
		"v1.2-rc1":                false,
		"md5-" + hex:              false,
	} {
		if got := isDigestTag(tag); got != want {
			t.Errorf("isDigestTag(%q) = %v, want %v", tag, got, want)
		}
	}
}

// A tag listing is complete or refused, never silently short: a missed
// cosign tag would be a signature left behind.
func TestTagListingFollowsPagesOrRefuses(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			want := map[string]bool{}
			for i := range 5 {
				img := r.PushImage(t, "app", fmt.Sprintf("v%d", i), testregistry.ImageSpec{Seed: int64(30 + i)})
				r.PushCosign(t, "app", img.Desc, "sig")
				want[graph.FallbackTag(img.Desc.Digest)+".sig"] = true
			}
			_, c := clients(t)
			for _, n := range []int{2, 5, 100} {
				r.ResetCounts()
				got, err := c.Tags(context.Background(), repoOf(r, "app"), n, isDigestTag)
				if err != nil {
					if !errors.Is(err, remote.ErrTagsTruncated) {
						t.Errorf("n=%d: %v", n, err)
					}
					continue
				}
				if len(got) != len(want) {
					t.Errorf("n=%d: listed %d digest tags %q, want %d", n, len(got), got, len(want))
				}
				for _, tag := range got {
					if !want[tag] {
						t.Errorf("n=%d: listed %q, not a tag pushed here", n, tag)
					}
				}
				if pages := r.Count("GET", "tags"); n == 2 && pages < 5 {
					t.Errorf("n=2: %d requests for 10 tags: the pages were not followed", pages)
				}
			}
		})
	}
}

// A registry whose referrers listing keeps failing makes Find fail after
// one budget, never answer an empty list: that would be signatures left
// behind without a word (containerd's FetchReferrers did that when the
// fallback tag was absent too).
func TestFindFailsWhenTheListingCannotBeRead(t *testing.T) {
	up := testregistry.NewReferrersAPI(t)
	img := up.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 23})
	up.PushReferrer(t, "app", img.Desc, typeSBOM, nil)
	proxy := testregistry.NewProxy(t, up, testregistry.Faults{Status: http.StatusServiceUnavailable, StatusTimes: 1000, StatusPath: "/referrers/"})
	got, err := finder(t, false).Find(context.Background(), repoOf(proxy, "app"), img.Desc)
	if err == nil {
		t.Fatalf("Find = %+v, want an error", got)
	}
	if !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), proxy.Host) {
		t.Errorf("error %q does not name the registry and its answer", err)
	}
	// clients() allows one retry: two requests, not two per layer.
	if n := proxy.Count("GET", "referrers"); n != 2 {
		t.Errorf("%d referrers requests, want one budget, 2", n)
	}
}

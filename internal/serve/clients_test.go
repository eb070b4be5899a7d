package serve

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/pack"
	"github.com/bundle-dev/bundle/unpack"
)

// Each test here is a real client library pulling from bundle serve FILE:
// what the site's tools will do.

func TestCraneCopiesMultiPlatformIndexFromServe(t *testing.T) {
	f := newFixture(t, ".tar.zst")
	base, _ := serveFiles(t, Options{Files: []string{f.file}})
	host := strings.TrimPrefix(base, "http://")
	dst := testregistry.NewReferrersAPI(t)
	if err := crane.Copy(host+"/team/multi:2.0", dst.Ref("copy/multi", "2.0"), crane.Insecure); err != nil {
		t.Fatalf("crane copy: %v", err)
	}
	if d, _, ok := dst.GetManifest(t, "copy/multi", "2.0"); !ok || d.Digest != f.index.Desc.Digest {
		t.Errorf("copied index %s (found %v), want %s", d.Digest, ok, f.index.Desc.Digest)
	}
	img, err := crane.Pull(host+"/team/multi:2.0", crane.Insecure, crane.WithPlatform(&v1.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil {
		t.Fatalf("crane pull arm64: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if want := f.index.Children[1].Layers[i].Digest.String(); d.String() != want {
			t.Errorf("arm64 layer %d is %s, want %s", i, d, want)
		}
		if _, err := crane.PullLayer(host+"/team/multi@"+d.String(), crane.Insecure); err != nil {
			t.Errorf("layer %s: %v", d, err)
		}
	}
}

func TestOrasListsReferrerTreeThroughAPI(t *testing.T) {
	f := newFixture(t, ".tar.zst")
	base, _ := serveFiles(t, Options{Files: []string{f.file}})
	repo, err := orasremote.NewRepository(strings.TrimPrefix(base, "http://") + "/team/multi")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	// What oras discover prints: the tree below the index, level by level.
	list := func(subject ocispec.Descriptor, artifactType string) []digest.Digest {
		var out []digest.Digest
		err := repo.Referrers(t.Context(), subject, artifactType, func(rs []ocispec.Descriptor) error {
			for _, r := range rs {
				out = append(out, r.Digest)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("oras referrers of %s: %v", subject.Digest, err)
		}
		return out
	}
	tests := []struct {
		name         string
		subject      ocispec.Descriptor
		artifactType string
		want         []digest.Digest
	}{
		{"index", f.index.Desc, "", []digest.Digest{f.sbom.Digest}},
		{"sbom", f.sbom, "", []digest.Digest{f.sig.Digest}},
		{"platform", f.index.Children[1].Desc, "", []digest.Digest{f.onChild.Digest}},
		{"index, signatures only", f.index.Desc, typeSig, nil},
		{"sbom, signatures only", f.sbom, typeSig, []digest.Digest{f.sig.Digest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.subject, tt.artifactType); !slices.Equal(got, tt.want) {
				t.Errorf("referrers %v, want %v", got, tt.want)
			}
		})
	}
}

func TestContainerdResolverPullsByTag(t *testing.T) {
	f := newFixture(t, ".tar")
	base, _ := serveFiles(t, Options{Files: []string{f.file}})
	ctx := t.Context()
	ref := strings.TrimPrefix(base, "http://") + "/team/multi:2.0"
	resolver := remote.Options{PlainHTTP: true}.Resolver(ctx)
	name, desc, err := resolver.Resolve(ctx, ref)
	if err != nil {
		t.Fatalf("resolve %s: %v", ref, err)
	}
	if desc.Digest != f.index.Desc.Digest {
		t.Errorf("resolved %s, want %s", desc.Digest, f.index.Desc.Digest)
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	store, err := local.NewStore(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatal(err)
	}
	// What ctr pull does: fetch every manifest and blob, checked by the
	// content store against its digest.
	h := images.Handlers(remotes.FetchHandler(store, fetcher), images.ChildrenHandler(store))
	if err := images.Dispatch(ctx, h, nil, desc); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	for _, c := range f.index.Children {
		for _, d := range append([]ocispec.Descriptor{c.Desc, c.Config}, c.Layers...) {
			if _, err := store.Info(ctx, d.Digest); err != nil {
				t.Errorf("%s not pulled: %v", d.Digest, err)
			}
		}
	}
}

// TestBundleCarriesServedImagesOn exports from bundle serve and imports
// into registries with and without the referrers API: the registry to
// registry path. The target must list what the source listed.
func TestBundleCarriesServedImagesOn(t *testing.T) {
	f := newFixture(t, ".tar.zst")
	base, _ := serveFiles(t, Options{Files: []string{f.file}})
	host := strings.TrimPrefix(base, "http://")
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "again.tar.zst")
	refs := []string{host + "/team/multi:2.0", host + "/team/signed:1.0"}
	if _, err := pack.Export(ctx, refs, pack.Options{Output: out, CacheDir: filepath.Join(dir, "cache"), Remote: remote.Options{PlainHTTP: true}}); err != nil {
		t.Fatalf("export from serve: %v", err)
	}
	for _, kind := range []struct {
		name string
		new  func(testing.TB) *testregistry.Registry
	}{{"distribution", testregistry.NewDistribution}, {"referrersAPI", testregistry.NewReferrersAPI}} {
		t.Run(kind.name, func(t *testing.T) {
			dst := kind.new(t)
			if _, err := unpack.Import(ctx, out, unpack.Options{Target: dst.Host, Remote: remote.Options{PlainHTTP: true}}); err != nil {
				t.Fatalf("import: %v", err)
			}
			for repo, want := range map[string]digest.Digest{"team/multi:2.0": f.index.Desc.Digest, "team/signed:1.0": f.signed.Desc.Digest,
				"team/signed:" + strings.Replace(f.signed.Desc.Digest.String(), ":", "-", 1) + ".sig": f.cosign.Digest} {
				r, tag, _ := strings.Cut(repo, ":")
				if d, _, ok := dst.GetManifest(t, r, tag); !ok || d.Digest != want {
					t.Errorf("%s is %s (found %v), want %s", repo, d.Digest, ok, want)
				}
			}
			for _, subject := range []ocispec.Descriptor{f.index.Desc, f.sbom, f.index.Children[1].Desc} {
				want := digests(f.src.ListReferrers(t, "team/multi", subject.Digest))
				if got := digests(dst.ListReferrers(t, "team/multi", subject.Digest)); !slices.Equal(got, want) {
					t.Errorf("referrers of %s: %v, want %v as on the source", subject.Digest, got, want)
				}
			}
		})
	}
}

func digests(ds []ocispec.Descriptor) []digest.Digest {
	var out []digest.Digest
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	slices.Sort(out)
	return out
}

package referrers

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opencontainers/image-spec/specs-go"

	"github.com/bundle-dev/bundle/internal/graph"
)

func entry(name, artifactType string, annotations map[string]string) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:    ocispec.MediaTypeImageManifest,
		Digest:       digest.FromString(name),
		Size:         int64(len(name)),
		ArtifactType: artifactType,
		Annotations:  annotations,
	}
}

func TestFilterKeepsListedArtifactTypes(t *testing.T) {
	rs := []Referrer{
		{Descriptor: entry("sig", "application/vnd.dev.sigstore.bundle.v0.3+json", nil)},
		{Descriptor: entry("sbom", "application/spdx+json", nil)},
		{Descriptor: entry("none", "", nil)},
	}
	tests := []struct {
		name  string
		types []string
		want  []string
	}{
		{"empty list keeps all", nil, []string{"sig", "sbom", "none"}},
		{"one type", []string{"application/spdx+json"}, []string{"sbom"}},
		{"two types", []string{"application/spdx+json", "application/vnd.dev.sigstore.bundle.v0.3+json"}, []string{"sig", "sbom"}},
		{"unknown type keeps none", []string{"application/x-nothing"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Filter(rs, tt.types)
			if len(got) != len(tt.want) {
				t.Fatalf("Filter kept %d referrers, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].Descriptor.Digest != digest.FromString(w) {
					t.Errorf("Filter()[%d] = %s, want %s", i, got[i].Descriptor.Digest, w)
				}
			}
		})
	}
}

func TestMergeIndex(t *testing.T) {
	foreign := entry("foreign", "application/x-foreign", map[string]string{"by": "someone else"})
	ours := entry("ours", "application/spdx+json", map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"})
	oursBare := ours
	oursBare.ArtifactType, oursBare.Annotations = "", nil
	index := func(ds ...ocispec.Descriptor) *ocispec.Index {
		return &ocispec.Index{Versioned: ocispecVersioned(), MediaType: ocispec.MediaTypeImageIndex, Manifests: ds}
	}
	tests := []struct {
		name        string
		current     *ocispec.Index
		refs        []ocispec.Descriptor
		want        []ocispec.Descriptor
		wantChanged bool
	}{
		{"creates index when none", nil, []ocispec.Descriptor{ours}, []ocispec.Descriptor{ours}, true},
		{"keeps foreign entry and appends ours", index(foreign), []ocispec.Descriptor{ours}, []ocispec.Descriptor{foreign, ours}, true},
		{"unchanged when already listed", index(foreign, ours), []ocispec.Descriptor{ours}, []ocispec.Descriptor{foreign, ours}, false},
		{"replaces our entry lacking artifactType", index(oursBare, foreign), []ocispec.Descriptor{ours}, []ocispec.Descriptor{ours, foreign}, true},
		{"drops duplicate entries", index(foreign, foreign, ours), []ocispec.Descriptor{ours}, []ocispec.Descriptor{foreign, ours}, true},
		{"refs twice listed once", nil, []ocispec.Descriptor{ours, ours}, []ocispec.Descriptor{ours}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := mergeIndex(tt.current, tt.refs)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if got.SchemaVersion != 2 || got.MediaType != ocispec.MediaTypeImageIndex {
				t.Errorf("index header = %d %q, want 2 %q", got.SchemaVersion, got.MediaType, ocispec.MediaTypeImageIndex)
			}
			if len(got.Manifests) != len(tt.want) {
				t.Fatalf("index lists %d entries, want %d: %+v", len(got.Manifests), len(tt.want), got.Manifests)
			}
			for i, w := range tt.want {
				if !sameEntry(got.Manifests[i], w) {
					t.Errorf("entry %d = %+v, want %+v", i, got.Manifests[i], w)
				}
			}
		})
	}
}

func TestCosignArtifactTypeComesFromLayerWhenConfigIsGeneric(t *testing.T) {
	layer := func(mt string) []ocispec.Descriptor { return []ocispec.Descriptor{{MediaType: mt}} }
	tests := []struct {
		name string
		m    graph.Manifest
		want string
	}{
		{"signature", graph.Manifest{Config: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig}, Layers: layer("application/vnd.dev.cosign.simplesigning.v1+json")}, "application/vnd.dev.cosign.simplesigning.v1+json"},
		{"attestation", graph.Manifest{Config: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig}, Layers: layer("application/vnd.dsse.envelope.v1+json")}, "application/vnd.dsse.envelope.v1+json"},
		{"artifactType wins", graph.Manifest{ArtifactType: "application/x-a", Layers: layer("application/x-b")}, "application/x-a"},
		{"specific config wins over layer", graph.Manifest{Config: &ocispec.Descriptor{MediaType: "application/x-c"}, Layers: layer("application/x-b")}, "application/x-c"},
		{"no layers falls back to config", graph.Manifest{Config: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig}}, ocispec.MediaTypeImageConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cosignArtifactType(&tt.m); got != tt.want {
				t.Errorf("cosignArtifactType = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "api": ModeAPI, "tag": ModeTag} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("both"); err == nil {
		t.Error("ParseMode(both) succeeded, want an error")
	}
}

func TestCheckRepoRefusesTagsAndDigests(t *testing.T) {
	for _, repo := range []string{"", "app", "reg.example/app:1.0", "reg.example/app@sha256:00", "/app"} {
		if err := checkRepo(repo); err == nil {
			t.Errorf("checkRepo(%q) succeeded, want an error", repo)
		}
	}
	if err := checkRepo("127.0.0.1:5000/team/app"); err != nil {
		t.Errorf("checkRepo(host:port/team/app) = %v", err)
	}
}

func ocispecVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

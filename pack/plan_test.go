package pack

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

func desc(mt, name string, size int64) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(name), Size: size}
}

func TestWriteOrderPutsManifestsThenSmallBlobsThenLayers(t *testing.T) {
	big := desc(ocispec.MediaTypeImageLayerGzip, "big", 10<<20)
	small := desc(ocispec.MediaTypeImageLayer, "small", 100)
	cfg := desc(ocispec.MediaTypeImageConfig, "cfg", 200<<10)
	man := desc(ocispec.MediaTypeImageManifest, "man", 500)
	ref := desc(ocispec.MediaTypeImageManifest, "ref", 400)
	p := &Plan{Nodes: []*Node{
		{Desc: big, Role: RoleLayer},
		{Desc: man, Role: RoleManifest},
		{Desc: small, Role: RoleLayer},
		{Desc: cfg, Role: RoleConfig},
		{Desc: ref, Role: RoleReferrer},
	}}
	var got []digest.Digest
	for _, n := range p.WriteOrder() {
		got = append(got, n.Desc.Digest)
	}
	want := []digest.Digest{man.Digest, ref.Digest, small.Digest, cfg.Digest, big.Digest}
	if !slices.Equal(got, want) {
		t.Errorf("write order = %v, want %v", got, want)
	}
}

func TestFilterPlatformsKeepsMatchingChildrenAndTheirAttestations(t *testing.T) {
	amd := desc(ocispec.MediaTypeImageManifest, "amd", 1)
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := desc(ocispec.MediaTypeImageManifest, "arm", 1)
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	armv7 := desc(ocispec.MediaTypeImageManifest, "armv7", 1)
	armv7.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	att := func(of ocispec.Descriptor) ocispec.Descriptor {
		d := desc(ocispec.MediaTypeImageManifest, "att-"+of.Digest.String(), 1)
		d.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
		d.Annotations = map[string]string{
			graph.AnnotationDockerRefType:   graph.DockerRefTypeAttestation,
			graph.AnnotationDockerRefDigest: of.Digest.String(),
		}
		return d
	}
	noPlatform := desc(ocispec.MediaTypeImageManifest, "none", 1)
	children := []ocispec.Descriptor{amd, arm, armv7, att(amd), att(arm), att(armv7), noPlatform}
	inner := func(context.Context, ocispec.Descriptor) ([]ocispec.Descriptor, error) { return children, nil }
	index := desc(ocispec.MediaTypeImageIndex, "index", 1)

	for _, c := range []struct {
		name  string
		specs []string
		want  []ocispec.Descriptor
	}{
		{"all", nil, children},
		{"amd64", []string{"linux/amd64"}, []ocispec.Descriptor{amd, att(amd), noPlatform}},
		{"arm64 without variant", []string{"linux/arm64"}, []ocispec.Descriptor{arm, att(arm), noPlatform}},
		{"arm v7 and amd64", []string{"linux/arm/v7", "linux/amd64"}, []ocispec.Descriptor{amd, armv7, att(amd), att(armv7), noPlatform}},
		{"none match", []string{"windows/amd64"}, []ocispec.Descriptor{noPlatform}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := platformMatcher(c.specs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := filterPlatforms(m, inner)(context.Background(), index)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, c.want, func(a, b ocispec.Descriptor) bool { return a.Digest == b.Digest }) {
				t.Errorf("kept %d children %v, want %d", len(got), digests(got), len(c.want))
			}
		})
	}

	// A manifest's children (config, layers) are never platform-filtered.
	m := platforms.Any(platforms.MustParse("windows/amd64"))
	layers := []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayer, "l", 1)}
	got, _ := filterPlatforms(m, func(context.Context, ocispec.Descriptor) ([]ocispec.Descriptor, error) { return layers, nil })(
		context.Background(), desc(ocispec.MediaTypeImageManifest, "m", 1))
	if len(got) != 1 {
		t.Errorf("a manifest's layers were filtered: %v", got)
	}
}

func digests(ds []ocispec.Descriptor) []digest.Digest {
	var out []digest.Digest
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	return out
}

func TestBuildIndexNamesImagesAndCosignTagsOnly(t *testing.T) {
	img := desc(ocispec.MediaTypeImageIndex, "img", 10)
	img.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	img.URLs = []string{"https://elsewhere.example/blob"}
	sbom := desc(ocispec.MediaTypeImageManifest, "sbom", 5)
	sbom.ArtifactType = "application/spdx+json"
	sbom.Annotations = map[string]string{"org.example": "x"}
	sig := desc(ocispec.MediaTypeImageManifest, "sig", 5)
	p := &Plan{
		Images: []PlannedImage{{Ref: "reg.example/app:1", Desc: img}},
		Referrers: []PlannedReferrer{
			{Desc: sbom, Subject: img.Digest, Via: "api"},
			{Desc: sig, Subject: img.Digest, Via: "cosign", TagRef: "reg.example/app:sha256-abc.sig"},
		},
	}
	data, err := buildIndex(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 3 {
		t.Fatalf("index.json = %s", data)
	}
	e := idx.Manifests[0]
	if e.Annotations[ocispec.AnnotationRefName] != "reg.example/app:1" || e.Annotations[annotationContainerdName] != "reg.example/app:1" {
		t.Errorf("image entry annotations = %v", e.Annotations)
	}
	if e.Platform != nil || e.URLs != nil {
		t.Errorf("image entry carries platform or urls: %+v", e)
	}
	if s := idx.Manifests[1]; s.ArtifactType != sbom.ArtifactType || s.Annotations["org.example"] != "x" || s.Annotations[ocispec.AnnotationRefName] != "" {
		t.Errorf("referrer entry = %+v, want its artifactType and annotations, no name", s)
	}
	if c := idx.Manifests[2]; c.Annotations[ocispec.AnnotationRefName] != "reg.example/app:sha256-abc.sig" {
		t.Errorf("cosign entry = %+v, want the tag reference as its name", c)
	}
	if sbom.Annotations[ocispec.AnnotationRefName] != "" {
		t.Error("buildIndex changed the plan's annotations")
	}
}

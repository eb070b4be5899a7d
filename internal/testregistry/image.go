package testregistry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the seeded content beyond those graph and ocispec name.
const (
	MediaTypeDockerConfig    = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeHelmConfig      = "application/vnd.cncf.helm.config.v1+json"
	MediaTypeHelmChart       = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	MediaTypeCosignSig       = "application/vnd.dev.cosign.simplesigning.v1+json"
	MediaTypeDSSE            = "application/vnd.dsse.envelope.v1+json"
	MediaTypeSPDX            = "text/spdx+json"
	MediaTypeInToto          = "application/vnd.in-toto+json"
	// MediaTypeTestPayload is the media type of a referrer's one layer.
	MediaTypeTestPayload = "application/vnd.bundle.test.payload.v1+json"
)

// ImageSpec describes an image built in code. Its zero value is a
// two-layer OCI image of 1 KiB uncompressed tar layers.
type ImageSpec struct {
	Layers    int   // default 2
	LayerSize int   // bytes of each layer's (random, deterministic) content; default 1 KiB
	Seed      int64 // content seed: same seed, same bytes
	// Shared layers, already seeded somewhere on the same registry, come
	// first (mounted into the repository when needed): shared bases.
	Shared   []ocispec.Descriptor
	Platform *ocispec.Platform // default linux/amd64 in the config
	Docker   bool              // Docker schema2 media types instead of OCI
	Gzip     bool              // layer bytes are real gzip streams; else an uncompressed tar
	// ArtifactType makes an artifact. A config type (".config.v1+json",
	// such as Helm's) becomes the config media type, as Helm does; any
	// other sets the manifest's artifactType with the empty config.
	ArtifactType string
	Annotations  map[string]string // on the manifest (on the index for PushIndex)
}

// Image is a pushed image manifest and its parts.
type Image struct {
	Desc, Config ocispec.Descriptor
	Layers       []ocispec.Descriptor
}

// Index is a pushed index, its platform images and buildx attestations.
type Index struct {
	Desc         ocispec.Descriptor
	Children     []Image
	Attestations []ocispec.Descriptor
}

// PushImage builds an image from spec, pushes its blobs and manifest to
// repo, and tags it (tag "" pushes by digest only).
func (r *Registry) PushImage(t testing.TB, repo, tag string, spec ImageSpec) Image {
	t.Helper()
	return r.pushImage(t, repo, tag, spec, 0)
}

func (r *Registry) pushImage(t testing.TB, repo, tag string, spec ImageSpec, stream uint64) Image {
	t.Helper()
	if spec.Layers == 0 {
		spec.Layers = 2
	}
	if spec.LayerSize == 0 {
		spec.LayerSize = 1 << 10
	}
	var img Image
	var diffIDs []digest.Digest
	for _, d := range spec.Shared {
		r.mountBlob(t, repo, d)
		img.Layers = append(img.Layers, d)
		diffIDs = append(diffIDs, r.diffIDOf(d.Digest))
	}
	for i := range spec.Layers {
		d, diffID := r.pushLayer(t, repo, spec, stream<<32|uint64(i))
		img.Layers = append(img.Layers, d)
		diffIDs = append(diffIDs, diffID)
	}
	img.Config = r.pushConfig(t, repo, spec, diffIDs)

	m := manifestJSON{
		SchemaVersion: 2,
		MediaType:     ocispec.MediaTypeImageManifest,
		Config:        img.Config,
		Layers:        img.Layers,
		Annotations:   spec.Annotations,
	}
	if spec.Docker {
		m.MediaType = graph.MediaTypeDockerManifest
	}
	if spec.ArtifactType != "" && img.Config.MediaType == ocispec.MediaTypeEmptyJSON {
		m.ArtifactType = spec.ArtifactType
	}
	img.Desc = r.PushManifest(t, repo, tag, m.MediaType, mustJSON(t, m))
	img.Desc.Platform = spec.Platform
	img.Desc.ArtifactType = m.ArtifactType
	return img
}

// manifestJSON is an image manifest with field order as clients write it.
type manifestJSON struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType,omitempty"`
	Config        ocispec.Descriptor   `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Subject       *ocispec.Descriptor  `json:"subject,omitempty"`
	Annotations   map[string]string    `json:"annotations,omitempty"`
}

func (r *Registry) diffIDOf(d digest.Digest) digest.Digest {
	r.seed.mu.Lock()
	defer r.seed.mu.Unlock()
	if id, ok := r.seed.diffIDs[d]; ok {
		return id
	}
	return d
}

// pushLayer pushes one layer: a tar holding one file of random bytes drawn
// from (seed, stream), gzipped when asked.
func (r *Registry) pushLayer(t testing.TB, repo string, spec ImageSpec, stream uint64) (ocispec.Descriptor, digest.Digest) {
	t.Helper()
	content := randomBytes(spec.Seed, stream, spec.LayerSize)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{Name: fmt.Sprintf("layer-%d-%d.bin", spec.Seed, stream), Mode: 0o644, Size: int64(len(content)), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID := digest.FromBytes(tarBuf.Bytes())
	data, mt := tarBuf.Bytes(), layerMediaType(spec)
	if spec.Gzip || spec.ArtifactType == MediaTypeHelmConfig {
		data = gzipBytes(t, data)
	}
	d := r.PushBlob(t, repo, mt, data)
	r.seed.mu.Lock()
	r.seed.diffIDs[d.Digest] = diffID
	r.seed.mu.Unlock()
	return d, diffID
}

func layerMediaType(spec ImageSpec) string {
	switch {
	case spec.ArtifactType == MediaTypeHelmConfig:
		return MediaTypeHelmChart
	case spec.Docker && spec.Gzip:
		return MediaTypeDockerLayerGzip
	case spec.Docker:
		return MediaTypeDockerLayer
	case spec.Gzip:
		return ocispec.MediaTypeImageLayerGzip
	}
	return ocispec.MediaTypeImageLayer
}

func (r *Registry) pushConfig(t testing.TB, repo string, spec ImageSpec, diffIDs []digest.Digest) ocispec.Descriptor {
	t.Helper()
	switch {
	case strings.HasSuffix(spec.ArtifactType, ".config.v1+json"):
		cfg := map[string]any{"name": "chart", "version": fmt.Sprintf("0.%d.0", spec.Seed), "apiVersion": "v2"}
		return r.PushBlob(t, repo, spec.ArtifactType, mustJSON(t, cfg))
	case spec.ArtifactType != "":
		return r.pushEmpty(t, repo)
	}
	p := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	if spec.Platform != nil {
		p = *spec.Platform
	}
	cfg := ocispec.Image{
		Platform: p,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config:   ocispec.ImageConfig{Labels: map[string]string{"seed": fmt.Sprint(spec.Seed)}},
	}
	mt := ocispec.MediaTypeImageConfig
	if spec.Docker {
		mt = MediaTypeDockerConfig
	}
	return r.PushBlob(t, repo, mt, mustJSON(t, cfg))
}

func (r *Registry) pushEmpty(t testing.TB, repo string) ocispec.Descriptor {
	t.Helper()
	d := r.PushBlob(t, repo, ocispec.MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Data)
	d.Data = ocispec.DescriptorEmptyJSON.Data
	return d
}

// PushIndex pushes one image per platform ("linux/arm/v7") and an index of
// them tagged tag. buildx adds, per platform, an attestation manifest as
// buildx writes it: platform unknown/unknown, pointing at its image.
func (r *Registry) PushIndex(t testing.TB, repo, tag string, platformList []string, spec ImageSpec, buildx bool) Index {
	t.Helper()
	var idx Index
	var entries []ocispec.Descriptor
	for i, s := range platformList {
		p, err := platforms.Parse(s)
		if err != nil {
			t.Fatalf("testregistry: platform %q: %v", s, err)
		}
		child := spec
		child.Platform = &p
		child.Annotations = nil
		img := r.pushImage(t, repo, "", child, uint64(i+1))
		idx.Children = append(idx.Children, img)
		entries = append(entries, img.Desc)
	}
	if buildx {
		for i, img := range idx.Children {
			att := r.pushAttestation(t, repo, img.Desc, spec.Seed, uint64(len(platformList)+i+1))
			idx.Attestations = append(idx.Attestations, att)
			entries = append(entries, att)
		}
	}
	mt := ocispec.MediaTypeImageIndex
	if spec.Docker && !buildx {
		mt = graph.MediaTypeDockerManifestList
	}
	doc := ocispec.Index{
		Versioned:   specsVersioned(),
		MediaType:   mt,
		Manifests:   entries,
		Annotations: spec.Annotations,
	}
	idx.Desc = r.PushManifest(t, repo, tag, mt, mustJSON(t, doc))
	return idx
}

func (r *Registry) pushAttestation(t testing.TB, repo string, subject ocispec.Descriptor, seed int64, stream uint64) ocispec.Descriptor {
	t.Helper()
	stmt := map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://slsa.dev/provenance/v0.2",
		"subject":       []map[string]any{{"name": "image", "digest": map[string]string{"sha256": subject.Digest.Encoded()}}},
		"predicate":     map[string]any{"seed": seed, "stream": stream},
	}
	layer := r.PushBlob(t, repo, MediaTypeInToto, mustJSON(t, stmt))
	layer.Annotations = map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
	cfg := r.PushBlob(t, repo, ocispec.MediaTypeImageConfig, mustJSON(t, map[string]any{
		"architecture": "unknown", "os": "unknown", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.Digest.String()}},
	}))
	m := manifestJSON{SchemaVersion: 2, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	d := r.PushManifest(t, repo, "", m.MediaType, mustJSON(t, m))
	d.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	d.Annotations = map[string]string{
		graph.AnnotationDockerRefType:   graph.DockerRefTypeAttestation,
		graph.AnnotationDockerRefDigest: subject.Digest.String(),
	}
	return d
}

// PushReferrer pushes an OCI 1.1 referrer of subject: an image manifest with
// artifactType, the empty config and one small layer. Same arguments, same
// digest: pass distinct annotations for distinct referrers. Without the
// referrers API it also creates or merges the fallback tag index, as
// clients must.
func (r *Registry) PushReferrer(t testing.TB, repo string, subject ocispec.Descriptor, artifactType string, annotations map[string]string) ocispec.Descriptor {
	t.Helper()
	payload := map[string]any{"subject": subject.Digest, "artifactType": artifactType, "annotations": annotations}
	layer := r.PushBlob(t, repo, MediaTypeTestPayload, mustJSON(t, payload))
	sub := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := manifestJSON{
		SchemaVersion: 2,
		MediaType:     ocispec.MediaTypeImageManifest,
		ArtifactType:  artifactType,
		Config:        r.pushEmpty(t, repo),
		Layers:        []ocispec.Descriptor{layer},
		Subject:       &sub,
		Annotations:   annotations,
	}
	d := r.PushManifest(t, repo, "", m.MediaType, mustJSON(t, m))
	d.ArtifactType = artifactType
	d.Annotations = annotations
	if !r.HasReferrersAPI() {
		r.mergeFallback(t, repo, subject.Digest, d)
	}
	return d
}

// mergeFallback adds d to the fallback tag index of subject, under a lock
// so that concurrent seeding in one test does not lose entries.
func (r *Registry) mergeFallback(t testing.TB, repo string, subject digest.Digest, d ocispec.Descriptor) {
	t.Helper()
	r.seed.fallbackMu.Lock()
	defer r.seed.fallbackMu.Unlock()
	tag := graph.FallbackTag(subject)
	idx := ocispec.Index{Versioned: specsVersioned(), MediaType: ocispec.MediaTypeImageIndex}
	if _, data, ok := r.GetManifest(t, repo, tag); ok {
		if err := json.Unmarshal(data, &idx); err != nil {
			t.Fatalf("testregistry: fallback tag %s in %s: %v", tag, repo, err)
		}
	}
	for _, e := range idx.Manifests {
		if e.Digest == d.Digest {
			return
		}
	}
	idx.Manifests = append(idx.Manifests, d)
	r.PushManifest(t, repo, tag, ocispec.MediaTypeImageIndex, mustJSON(t, idx))
}

// PushCosign pushes a cosign-style attachment of subject under the tag
// <alg>-<hex>.<suffix> (suffix "sig", "att" or "sbom").
func (r *Registry) PushCosign(t testing.TB, repo string, subject ocispec.Descriptor, suffix string) ocispec.Descriptor {
	t.Helper()
	layerType, annotations := MediaTypeCosignSig, map[string]string{}
	payload := map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": r.Host + "/" + repo},
			"image":    map[string]string{"docker-manifest-digest": subject.Digest.String()},
			"type":     "cosign container image signature",
		},
	}
	switch suffix {
	case "sig":
		annotations["dev.cosignproject.cosign/signature"] = base64.StdEncoding.EncodeToString([]byte("sig:" + subject.Digest))
	case "att":
		layerType = MediaTypeDSSE
		annotations["predicateType"] = "https://slsa.dev/provenance/v0.2"
		payload = map[string]any{"payloadType": "application/vnd.in-toto+json", "payload": base64.StdEncoding.EncodeToString([]byte(subject.Digest))}
	case "sbom":
		layerType = MediaTypeSPDX
		payload = map[string]any{"spdxVersion": "SPDX-2.3", "name": subject.Digest.String()}
	default:
		t.Fatalf("testregistry: cosign suffix %q: want sig, att or sbom", suffix)
	}
	layer := r.PushBlob(t, repo, layerType, mustJSON(t, payload))
	layer.Annotations = annotations
	cfg := r.PushBlob(t, repo, ocispec.MediaTypeImageConfig, mustJSON(t, map[string]any{
		"architecture": "", "os": "", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.Digest.String()}},
		"config": map[string]any{},
	}))
	m := manifestJSON{SchemaVersion: 2, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	return r.PushManifest(t, repo, graph.FallbackTag(subject.Digest)+"."+suffix, m.MediaType, mustJSON(t, m))
}

// PushSchema1 makes repo:tag a Docker schema 1 manifest. Registries that
// refuse schema 1 (distribution v3) get it served by the test wrapper.
func (r *Registry) PushSchema1(t testing.TB, repo, tag string) {
	t.Helper()
	layer := r.PushBlob(t, repo, MediaTypeDockerLayerGzip, gzipBytes(t, []byte{}))
	m := map[string]any{
		"schemaVersion": 1,
		"name":          repo,
		"tag":           tag,
		"architecture":  "amd64",
		"fsLayers":      []map[string]string{{"blobSum": layer.Digest.String()}},
		"history":       []map[string]string{{"v1Compatibility": `{"id":"` + layer.Digest.Encoded() + `"}`}},
	}
	data := mustJSON(t, m)
	if _, err := r.putManifest(repo, tag, graph.MediaTypeDockerSchema1, data); err == nil {
		return
	}
	s := r.seed
	if s.noSchema1 {
		t.Fatalf("testregistry: %s refuses schema 1 manifests and cannot serve one for %s:%s", s.Host, repo, tag)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := served{mediaType: graph.MediaTypeDockerSchema1, data: data}
	s.schema1[repo+"/"+tag] = v
	s.schema1[repo+"/"+digest.FromBytes(data).String()] = v
}

func specsVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

func randomBytes(seed int64, stream uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(seed), stream))
	out := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			out[i+j] = byte(v >> (8 * j))
		}
	}
	return out
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("testregistry: encoding %T: %v", v, err)
	}
	return data
}

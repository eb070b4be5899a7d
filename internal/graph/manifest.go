// Package graph is the part of the image graph that export and import share:
// what a manifest's children and subject are, bounded decoding, media types.
package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxManifestSize bounds every manifest or index read into memory.
const MaxManifestSize = 4 << 20

// Media types beyond those ocispec names.
const (
	MediaTypeDockerManifest      = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeArtifactManifest    = "application/vnd.oci.artifact.manifest.v1+json"
	MediaTypeDockerForeignLayer  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

	// buildx marks attestation manifests inside an index with these annotations.
	AnnotationDockerRefType   = "vnd.docker.reference.type"
	AnnotationDockerRefDigest = "vnd.docker.reference.digest"
	DockerRefTypeAttestation  = "attestation-manifest"
)

// ErrSchema1 is returned for Docker schema 1 manifests, which cannot be
// carried without rewriting them.
var ErrSchema1 = errors.New("docker schema 1 manifests are not supported: convert the image to schema 2 or OCI (for example with a current docker push) and retry")

// ErrTooLarge is returned when a manifest exceeds MaxManifestSize.
var ErrTooLarge = errors.New("manifest larger than 4 MiB")

// ManifestAccept is the Accept header of a manifest request: every type
// bundle carries.
const ManifestAccept = ocispec.MediaTypeImageManifest + ", " + ocispec.MediaTypeImageIndex + ", " +
	MediaTypeDockerManifest + ", " + MediaTypeDockerManifestList + ", " + MediaTypeArtifactManifest

// IsIndex reports whether mt is an image index or manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports whether mt is any manifest or index the graph walks
// into (as opposed to a blob: config, layer).
func IsManifest(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest, MediaTypeArtifactManifest,
		ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		return true
	}
	return false
}

// IsSchema1 reports whether mt is a Docker schema 1 manifest.
func IsSchema1(mt string) bool {
	return mt == MediaTypeDockerSchema1 || mt == MediaTypeDockerSchema1Signed
}

// IsForeign reports whether a layer is non-distributable.
func IsForeign(d ocispec.Descriptor) bool {
	switch d.MediaType {
	case MediaTypeDockerForeignLayer,
		ocispec.MediaTypeImageLayerNonDistributable,     //nolint:staticcheck // still met in the wild
		ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck
		ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return true
	}
	return false
}

// IsCompressedLayer reports whether a blob is already compressed, so that
// compressing it again is wasted work.
func IsCompressedLayer(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		"application/vnd.docker.image.rootfs.diff.tar.gzip", MediaTypeDockerForeignLayer,
		"application/vnd.cncf.helm.chart.content.v1.tar+gzip", "application/gzip", "application/zstd":
		return true
	}
	return false
}

// Manifest is the union of the fields bundle reads from an image manifest,
// an index, a Docker schema 2 manifest or list, and an artifact manifest.
type Manifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType,omitempty"`
	ArtifactType  string               `json:"artifactType,omitempty"`
	Config        *ocispec.Descriptor  `json:"config,omitempty"`
	Layers        []ocispec.Descriptor `json:"layers,omitempty"`
	Manifests     []ocispec.Descriptor `json:"manifests,omitempty"`
	Blobs         []ocispec.Descriptor `json:"blobs,omitempty"` // artifact manifest
	Subject       *ocispec.Descriptor  `json:"subject,omitempty"`
	Refers        *ocispec.Descriptor  `json:"refers,omitempty"` // pre-release name of subject
	Annotations   map[string]string    `json:"annotations,omitempty"`
	FSLayers      []json.RawMessage    `json:"fsLayers,omitempty"` // schema 1 tell-tale
}

// Parse decodes a manifest of media type mt. It refuses schema 1 and
// documents over MaxManifestSize or MaxDescriptors.
func Parse(mt string, data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, ErrTooLarge
	}
	return parse(mt, data, MaxDescriptors)
}

// ParseIndex decodes an index.json read by the caller within its own
// bound; it may list up to MaxIndexEntries.
func ParseIndex(data []byte) (*Manifest, error) {
	return parse(ocispec.MediaTypeImageIndex, data, MaxIndexEntries)
}

func parse(mt string, data []byte, maxList int) (*Manifest, error) {
	if IsSchema1(mt) {
		return nil, ErrSchema1
	}
	m, err := decode(data, maxList)
	if err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if m.SchemaVersion == 1 || len(m.FSLayers) > 0 {
		return nil, ErrSchema1
	}
	if m.MediaType == "" {
		m.MediaType = mt
	}
	// Every manifest and index says schemaVersion 2 but the short-lived
	// artifact manifest: without it, any JSON object (a config) would pass.
	if m.SchemaVersion != 2 && m.MediaType != MediaTypeArtifactManifest {
		return nil, fmt.Errorf("not a manifest: schemaVersion %d, want 2", m.SchemaVersion)
	}
	if m.Subject == nil && m.Refers != nil {
		m.Subject = m.Refers
	}
	return m, nil
}

// IsDocument reports whether data is a manifest or index as Parse reads
// one: how a stream tells its manifests from its other JSON blobs.
func IsDocument(data []byte) bool {
	if len(data) > MaxManifestSize {
		return false
	}
	_, err := Parse("", data)
	return err == nil
}

// ReadAll reads at most MaxManifestSize bytes from r.
func ReadAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxManifestSize {
		return nil, ErrTooLarge
	}
	return data, nil
}

// Children lists what a manifest needs before it can be pushed: an index's
// manifests, a manifest's config and layers, an artifact's blobs. The
// subject is not a child: a referrer may be pushed before or without it.
func (m *Manifest) Children() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	if m.Config != nil && m.Config.Digest != "" {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	out = append(out, m.Manifests...)
	out = append(out, m.Blobs...)
	return out
}

// ArtifactTypeOf is the artifact type a referrers list reports for m: its
// artifactType, else its config media type (the spec's rule).
func (m *Manifest) ArtifactTypeOf() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil {
		return m.Config.MediaType
	}
	return ""
}

// FallbackTag is the referrers tag schema's tag for a subject digest: <alg>-<hex>.
func FallbackTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

// ForFetch returns the descriptor to hand containerd's fetcher. containerd
// routes a fetch to the manifests endpoint only for the media types it
// knows, and the artifact manifest is not one of them: it would look for the
// manifest among the blobs and fail. Its Accept header still carries */*,
// so asking for it as an image manifest returns the stored bytes unchanged.
func ForFetch(d ocispec.Descriptor) ocispec.Descriptor {
	if d.MediaType == MediaTypeArtifactManifest {
		d.MediaType = ocispec.MediaTypeImageManifest
	}
	return d
}

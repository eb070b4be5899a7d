// Package referrers is the referrer graph on both sides of the air gap:
// Finder discovers what is attached to a manifest in a registry (referrers
// API, fallback tag index, cosign tags); Publisher makes a target registry
// list what import pushed (referrers API or the fallback tag index).
package referrers

import (
	"slices"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Where a referrer was found.
const (
	ViaAPI    = "api"    // the registry's referrers API
	ViaTag    = "tag"    // the fallback tag <alg>-<hex> index
	ViaCosign = "cosign" // a cosign tag <alg>-<hex>.sig/.att/.sbom
	ViaLayout = "layout" // an OCI layout (bundle)
)

// Referrer is one manifest attached to a subject, whatever the source:
// export, the bundle and import all speak this one list type.
type Referrer struct {
	// Descriptor is the referrer manifest: MediaType, Digest, Size,
	// ArtifactType and Annotations.
	Descriptor ocispec.Descriptor
	Subject    digest.Digest
	Via        string // ViaAPI, ViaTag, ViaCosign or ViaLayout
	Tag        string // the cosign tag (e.g. "sha256-<hex>.sig") when Via == ViaCosign
}

// Filter keeps the referrers whose artifact type is one of artifactTypes;
// an empty list keeps all. The result never aliases rs.
func Filter(rs []Referrer, artifactTypes []string) []Referrer {
	out := make([]Referrer, 0, len(rs))
	for _, r := range rs {
		if len(artifactTypes) == 0 || slices.Contains(artifactTypes, r.Descriptor.ArtifactType) {
			out = append(out, r)
		}
	}
	return out
}

package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Annotations naming an image in index.json.
const (
	annotationContainerdName = "io.containerd.image.name"
)

// checker walks the graph from index.json once the pass is over, since
// foreign archives may carry index.json last.
type checker struct {
	s       *scan
	reached map[digest.Digest]bool
	// leftOut holds digests a sparse index leaves out on purpose: their
	// referrers may point at them without that being damage.
	leftOut map[digest.Digest]bool
}

func checkGraph(s *scan, rep *Report) {
	if !s.layoutSeen && s.complete {
		s.add(Problem{Severity: SeverityError, Entry: layout.LayoutFile, Message: "no oci-layout file: this is not an OCI image layout archive"})
	}
	switch {
	case !s.complete:
		s.add(Problem{Severity: SeverityInfo, Message: "graph completeness not checked: the archive could not be read to its end"})
		return
	case !s.indexSeen:
		s.add(Problem{Severity: SeverityError, Entry: layout.IndexFile, Message: "no index.json: nothing says which images the bundle holds; export it again"})
		return
	case s.index == nil:
		return // already reported as unparsable
	}
	c := &checker{s: s, reached: map[digest.Digest]bool{}, leftOut: map[digest.Digest]bool{}}
	for _, d := range s.index.Manifests {
		c.visit(d, nil, layout.IndexFile)
	}
	c.closeOverReferrers()
	c.orphans()
	for _, d := range s.index.Manifests {
		if name := imageName(d); name != "" {
			rep.Images = append(rep.Images, name)
		}
	}
	for d := range c.reached {
		if s.manifests[d] != nil {
			rep.Manifests++
		}
	}
}

// imageName is the reference an index.json entry records, "" for an
// untagged referrer entry.
func imageName(d ocispec.Descriptor) string {
	if n := d.Annotations[annotationContainerdName]; n != "" {
		return n
	}
	return d.Annotations[ocispec.AnnotationRefName]
}

func (c *checker) problem(sev string, d ocispec.Descriptor, format string, args ...any) {
	p := Problem{Severity: sev, Digest: string(d.Digest), Message: fmt.Sprintf(format, args...)}
	if d.Digest.Validate() == nil {
		p.Entry = layout.BlobPath(d.Digest)
	}
	c.s.add(p)
}

func (c *checker) visit(d ocispec.Descriptor, parent *graph.Manifest, from string) {
	if err := d.Digest.Validate(); err != nil {
		c.problem(SeverityError, d, "%s lists an invalid digest %q: %v", from, d.Digest, err)
		return
	}
	size, ok := c.s.sizes[d.Digest]
	if !ok {
		c.missing(d, parent, from)
		return
	}
	if graph.IsForeign(d) {
		c.problem(SeverityInfo, d, "foreign (non-distributable) layer %s from %s is carried in the bundle", d.Digest, from)
	}
	if size != d.Size {
		c.problem(SeverityError, d, "%s declares %s as %d bytes but the bundle holds %d bytes: export it again", from, d.Digest, d.Size, size)
	}
	m := c.s.manifests[d.Digest]
	if graph.IsManifest(d.MediaType) && m == nil {
		why := "it is not a manifest"
		if err := c.s.notManifest[d.Digest]; err != nil {
			why = err.Error()
		} else if size > graph.MaxManifestSize {
			why = "it is larger than 4 MiB"
		}
		c.problem(SeverityError, d, "manifest %s (%s, from %s) cannot be read: %s", d.Digest, d.MediaType, from, why)
	}
	if c.reached[d.Digest] {
		return
	}
	c.reached[d.Digest] = true
	// A descriptor without a media type is walked when its content is a
	// manifest; typed blobs (config, layers) never are.
	if m == nil || !(graph.IsManifest(d.MediaType) || d.MediaType == "") {
		return
	}
	for _, child := range m.Children() {
		c.visit(child, m, "manifest "+d.Digest.String())
	}
}

// missing classifies an absent descriptor: left out on purpose (info) or
// a hole in the bundle (error).
func (c *checker) missing(d ocispec.Descriptor, parent *graph.Manifest, from string) {
	switch {
	case graph.IsForeign(d):
		c.problem(SeverityInfo, d, "foreign (non-distributable) layer %s from %s is not carried: the target fetches it from its own source", d.Digest, from)
	case parent != nil && graph.IsIndex(parent.MediaType) && c.siblingPresent(parent, d.Digest):
		c.leftOut[d.Digest] = true
		c.problem(SeverityInfo, d, "%s (%s) left out of sparse index %s", d.Digest, platformOf(d), from)
	case isAttestationFor(d, c.s.sizes):
		c.leftOut[d.Digest] = true
		c.problem(SeverityInfo, d, "attestation %s left out with the platform it describes (%s)", d.Digest, from)
	default:
		c.problem(SeverityError, d, "%s (%s, %d bytes) listed by %s is missing from the bundle: export it again", d.Digest, d.MediaType, d.Size, from)
	}
}

func (c *checker) siblingPresent(parent *graph.Manifest, self digest.Digest) bool {
	for _, m := range parent.Manifests {
		if _, ok := c.s.sizes[m.Digest]; ok && m.Digest != self {
			return true
		}
	}
	return false
}

// isAttestationFor reports a buildx attestation whose platform manifest is
// absent too.
func isAttestationFor(d ocispec.Descriptor, present map[digest.Digest]int64) bool {
	if d.Annotations[graph.AnnotationDockerRefType] != graph.DockerRefTypeAttestation {
		return false
	}
	_, ok := present[digest.Digest(d.Annotations[graph.AnnotationDockerRefDigest])]
	return !ok
}

func platformOf(d ocispec.Descriptor) string {
	if d.Platform == nil {
		return "no platform"
	}
	return platformString(d.Platform)
}

func platformString(p *ocispec.Platform) string {
	parts := []string{p.OS, p.Architecture}
	if p.Variant != "" {
		parts = append(parts, p.Variant)
	}
	return strings.Join(parts, "/")
}

// closeOverReferrers checks the subject of every reached referrer, and
// walks manifests that index.json does not list but whose subject is in the
// graph (other tools do not list referrers), until nothing new is reached.
func (c *checker) closeOverReferrers() {
	checked := map[digest.Digest]bool{}
	for changed := true; changed; {
		changed = false
		for _, d := range c.sortedReached() {
			if !checked[d] {
				checked[d] = true
				changed = true
				c.checkSubject(d)
			}
		}
		if c.adoptUnlistedReferrers() {
			changed = true
		}
	}
}

func (c *checker) checkSubject(d digest.Digest) {
	m := c.s.manifests[d]
	if m == nil || m.Subject == nil {
		return
	}
	sub := *m.Subject
	if _, ok := c.s.sizes[sub.Digest]; !ok && c.leftOut[sub.Digest] {
		c.problem(SeverityInfo, sub, "%s is a platform left out of a sparse index, so referrer %s has no subject in the bundle", sub.Digest, d)
		return
	}
	c.visit(sub, nil, "the subject of referrer "+d.String())
}

func (c *checker) adoptUnlistedReferrers() (adopted bool) {
	for _, d := range sortedKeys(c.s.manifests) {
		m := c.s.manifests[d]
		if c.reached[d] || m.Subject == nil || !c.reached[m.Subject.Digest] {
			continue
		}
		c.problem(SeverityInfo, ocispec.Descriptor{Digest: d}, "referrer %s of %s is not listed in index.json", d, m.Subject.Digest)
		c.visit(ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: c.s.sizes[d]}, nil, "the bundle")
		adopted = true
	}
	return adopted
}

func (c *checker) orphans() {
	for _, d := range sortedKeys(c.s.sizes) {
		if !c.reached[d] {
			c.problem(SeverityWarning, ocispec.Descriptor{Digest: d}, "orphan blob %s (%d bytes): nothing in index.json reaches it", d, c.s.sizes[d])
		}
	}
}

func (c *checker) sortedReached() []digest.Digest {
	out := make([]digest.Digest, 0, len(c.reached))
	for d := range c.reached {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[digest.Digest]V) []digest.Digest {
	out := make([]digest.Digest, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

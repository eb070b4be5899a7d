package verify

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
)

// checker walks the loaded graph once: every edge (index.json entry,
// child, subject) is checked against what the bundle holds, each
// manifest's edges once, so the work is linear in the graph.
type checker struct {
	b       *Bundle
	rep     *Report
	damaged map[digest.Digest]bool
	reached map[digest.Digest]bool
	// said keeps one problem per digest and kind: a blob that a thousand
	// manifests need is missing once.
	said map[string]bool
	// leftOut holds digests a sparse index leaves out on purpose: their
	// referrers may point at them without that being damage.
	leftOut map[digest.Digest]bool
	// fromBase holds the blobs an incremental bundle left out because its
	// base carried them.
	fromBase map[digest.Digest]bool
}

func checkGraph(b *Bundle, damaged map[digest.Digest]bool, rep *Report) {
	c := &checker{b: b, rep: rep, damaged: damaged, reached: map[digest.Digest]bool{}, said: map[string]bool{}, leftOut: map[digest.Digest]bool{}}
	c.fromBase = checkBase(b, rep)
	g := b.Graph
	for _, r := range g.Roots {
		c.edge(r.Desc, nil, layout.IndexFile)
		if r.Kind == graph.Image && r.Name != "" {
			rep.Images = append(rep.Images, r.Name)
		}
	}
	for _, n := range g.Nodes() {
		from := "manifest " + n.Desc.Digest.String()
		for _, child := range n.Children() {
			c.edge(child, n, from)
		}
	}
	for _, n := range g.Nodes() {
		if n.Manifest != nil && n.Manifest.Subject != nil {
			c.subject(n, *n.Manifest.Subject)
		}
	}
	for _, n := range g.Nodes() {
		if n.Err == nil {
			if _, ok := b.Present[n.Desc.Digest]; ok {
				rep.Manifests++
			}
		}
	}
	c.orphans()
	if b.Written() {
		c.order()
	}
}

func (c *checker) problem(sev, code string, d digest.Digest, format string, args ...any) {
	key := code + " " + d.String()
	if c.said[key] {
		return
	}
	c.said[key] = true
	p := Problem{Severity: sev, Code: code, Digest: string(d), Message: fmt.Sprintf(format, args...)}
	if d.Validate() == nil {
		p.Entry = layout.BlobPath(d)
	}
	c.rep.add(p)
}

// edge checks one descriptor that parent (nil for index.json) lists.
func (c *checker) edge(d ocispec.Descriptor, parent *graph.Node, from string) {
	if err := d.Digest.Validate(); err != nil {
		c.problem(SeverityError, "invalid-digest", d.Digest, "%s lists an invalid digest %q: %v", from, d.Digest, err)
		return
	}
	c.reached[d.Digest] = true
	size, ok := c.b.Present[d.Digest]
	if !ok {
		c.missing(d, parent, from)
		return
	}
	if graph.IsForeign(d) {
		c.problem(SeverityInfo, "foreign-layer", d.Digest, "foreign (non-distributable) layer %s from %s is carried in the bundle", d.Digest, from)
	}
	if size != d.Size {
		c.problem(SeverityError, "size-mismatch", d.Digest, "%s declares %s as %d bytes but the bundle holds %d bytes: export it again", from, d.Digest, d.Size, size)
		return
	}
	if !graph.IsManifest(d.MediaType) {
		return
	}
	if n := c.b.Graph.Node(d.Digest); n != nil && n.Err != nil && !c.damaged[d.Digest] {
		why := n.Err.Error()
		if errors.Is(n.Err, graph.ErrAbsent) {
			// A stream's manifests are those that came before its blobs.
			why = "it is not a manifest, or it comes after the blobs of a stream"
		}
		c.problem(SeverityError, "bad-manifest", d.Digest, "manifest %s (%s, from %s) cannot be read: %s", d.Digest, d.MediaType, from, why)
	}
}

// missing classifies an absent descriptor: left out on purpose (info) or
// a hole in the bundle (error).
func (c *checker) missing(d ocispec.Descriptor, parent *graph.Node, from string) {
	switch {
	case c.fromBase[d.Digest]:
		c.problem(SeverityInfo, "from-base", d.Digest, "%s (%s, %d bytes) listed by %s is left out: the base carried it", d.Digest, d.MediaType, d.Size, from)
	case graph.IsForeign(d):
		c.problem(SeverityInfo, "foreign-layer", d.Digest, "foreign (non-distributable) layer %s from %s is not carried: the target fetches it from its own source", d.Digest, from)
	case parent != nil && graph.IsIndex(parent.MediaType()) && c.siblingPresent(parent, d.Digest):
		c.leftOut[d.Digest] = true
		c.problem(SeverityInfo, "left-out", d.Digest, "%s (%s) left out of sparse index %s", d.Digest, platformOf(d), parent.Desc.Digest)
	case isAttestationFor(d, c.b.Present):
		c.leftOut[d.Digest] = true
		c.problem(SeverityInfo, "left-out", d.Digest, "attestation %s left out with the platform it describes (%s)", d.Digest, from)
	default:
		c.problem(SeverityError, "missing-blob", d.Digest, "%s (%s, %d bytes) listed by %s is missing from the bundle: export it again", d.Digest, d.MediaType, d.Size, from)
	}
}

func (c *checker) siblingPresent(parent *graph.Node, self digest.Digest) bool {
	for _, m := range parent.Manifest.Manifests {
		if _, ok := c.b.Present[m.Digest]; ok && m.Digest != self {
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

// subject checks that a referrer's subject is there, or was left out.
func (c *checker) subject(n *graph.Node, sub ocispec.Descriptor) {
	if _, ok := c.b.Present[sub.Digest]; !ok && c.leftOut[sub.Digest] {
		c.problem(SeverityInfo, "left-out-subject", n.Desc.Digest, "%s is a platform left out of a sparse index, so referrer %s has no subject in the bundle", sub.Digest, n.Desc.Digest)
		return
	}
	c.edge(sub, nil, "the subject of referrer "+n.Desc.Digest.String())
}

// orphans are blobs nothing reaches: another tool's leftovers (a
// warning), or, in a bundle bundle wrote, a sign that index.json lost
// entries (an error).
func (c *checker) orphans() {
	sev, hint := SeverityWarning, "nothing in index.json reaches it"
	if c.b.Written() {
		sev, hint = SeverityError, "nothing in index.json reaches it, though bundle writes only what it reaches: the bundle was altered"
	}
	for _, d := range slices.Sorted(maps.Keys(c.b.Present)) {
		if !c.reached[d] {
			c.problem(sev, "orphan-blob", d, "orphan blob %s (%d bytes): %s", d, c.b.Present[d], hint)
		}
	}
}

// order checks what a streamed import relies on in bundle's archives:
// every manifest comes before every other blob.
func (c *checker) order() {
	firstBlob, lastManifest := -1, -1
	var blob, manifest digest.Digest
	for d, i := range c.b.Order {
		if n := c.b.Graph.Node(d); n != nil {
			if i > lastManifest || (i == lastManifest && cmp.Less(d, manifest)) {
				lastManifest, manifest = i, d
			}
		} else if firstBlob < 0 || i < firstBlob {
			firstBlob, blob = i, d
		}
	}
	if firstBlob >= 0 && lastManifest > firstBlob {
		c.problem(SeverityError, "order", manifest, "manifest %s comes after blob %s, but bundle writes every manifest first (import from a stream relies on it): the bundle was altered", manifest, blob)
	}
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

func sortedCodes(m map[string]int) []string {
	return slices.Sorted(maps.Keys(m))
}

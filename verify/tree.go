package verify

import (
	"slices"
	"strings"

	"github.com/bundle-dev/bundle/internal/graph"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tree turns the layout's descriptors into Nodes: images at the top,
// platforms as children, referrers under what they refer to.
type tree struct {
	c         *contents
	referrers map[digest.Digest][]ocispec.Descriptor // by subject
	onPath    map[digest.Digest]bool                 // cycle guard
}

func newTree(c *contents) *tree {
	t := &tree{c: c, referrers: map[digest.Digest][]ocispec.Descriptor{}, onPath: map[digest.Digest]bool{}}
	listed := map[digest.Digest]bool{}
	for _, d := range c.index.Manifests {
		if sub, ok := t.subjectOf(d); ok {
			t.referrers[sub] = append(t.referrers[sub], d)
			listed[d.Digest] = true
		}
	}
	// A streamed bundle knows every manifest: referrers that index.json
	// does not list still belong to their subject.
	for _, d := range sortedKeys(c.manifests) {
		m := c.manifests[d]
		if m.Subject == nil || listed[d] {
			continue
		}
		t.referrers[m.Subject.Digest] = append(t.referrers[m.Subject.Digest],
			ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: c.sizes[d], ArtifactType: m.ArtifactType})
	}
	return t
}

// subjectOf tells whether an index.json entry is a referrer, and of what.
func (t *tree) subjectOf(d ocispec.Descriptor) (digest.Digest, bool) {
	if m := t.c.manifests[d.Digest]; m != nil && m.Subject != nil {
		return m.Subject.Digest, true
	}
	return cosignSubject(imageName(d))
}

func (t *tree) build(inv *Inventory) {
	reach := map[digest.Digest]int{} // blob -> number of images reaching it
	for _, d := range t.c.index.Manifests {
		if _, ok := t.subjectOf(d); ok {
			continue
		}
		blobs := map[digest.Digest]int64{}
		n := t.node(d, blobs)
		n.Reference = imageName(d)
		inv.Images = append(inv.Images, n)
		for b := range blobs {
			reach[b]++
		}
	}
	for b, count := range reach {
		if count > 1 {
			inv.SharedBytes += t.c.sizes[b]
		}
	}
}

// node builds the node of d and adds the blobs it reaches to blobs.
func (t *tree) node(d ocispec.Descriptor, blobs map[digest.Digest]int64) *Node {
	n := &Node{Digest: d.Digest.String(), MediaType: d.MediaType, Size: d.Size, ArtifactType: d.ArtifactType}
	if d.Platform != nil {
		n.Platform = platformString(d.Platform)
	}
	m := t.c.manifests[d.Digest]
	if _, ok := cosignSubject(imageName(d)); ok {
		n.Reference = imageName(d)
	}
	if t.onPath[d.Digest] || m == nil {
		n.Annotations = interesting(d.Annotations, nil)
		return n
	}
	t.onPath[d.Digest] = true
	defer delete(t.onPath, d.Digest)

	if n.MediaType == "" {
		n.MediaType = m.MediaType
	}
	if n.ArtifactType == "" && m.Subject != nil {
		n.ArtifactType = m.ArtifactTypeOf()
	}
	n.Annotations = interesting(d.Annotations, m.Annotations)
	for _, b := range m.Children() {
		if graph.IsManifest(b.MediaType) {
			continue
		}
		blobs[b.Digest] = b.Size
		n.Size += b.Size
	}
	t.addPlatforms(n, m, blobs)
	for _, r := range t.referrers[d.Digest] {
		rn := t.node(r, blobs)
		n.Referrers = append(n.Referrers, rn)
	}
	return n
}

// addPlatforms adds an index's manifests as children, except buildx
// attestations, which go under the platform they describe.
func (t *tree) addPlatforms(n *Node, m *graph.Manifest, blobs map[digest.Digest]int64) {
	var attestations []ocispec.Descriptor
	for _, c := range m.Manifests {
		if c.Annotations[graph.AnnotationDockerRefType] == graph.DockerRefTypeAttestation {
			attestations = append(attestations, c)
			continue
		}
		cn := t.node(c, blobs)
		n.Children = append(n.Children, cn)
		n.Size += cn.Size
	}
	for _, a := range attestations {
		an := t.node(a, blobs)
		n.Size += an.Size
		i := slices.IndexFunc(n.Children, func(c *Node) bool { return c.Digest == a.Annotations[graph.AnnotationDockerRefDigest] })
		if i < 0 {
			n.Children = append(n.Children, an)
			continue
		}
		n.Children[i].Referrers = append(n.Children[i].Referrers, an)
	}
}

// interesting keeps the annotations worth showing: when, and what kind
// of signature, SBOM or attestation.
func interesting(sets ...map[string]string) map[string]string {
	var out map[string]string
	for _, set := range sets {
		for k, v := range set {
			if !keepAnnotation(k) {
				continue
			}
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

func keepAnnotation(k string) bool {
	if k == ocispec.AnnotationCreated {
		return true
	}
	for _, p := range []string{"dev.sigstore.", "dev.cosignproject.", "vnd.docker.reference.", "in-toto.io/", "org.spdx.", "org.cyclonedx."} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

package verify

import (
	"math"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// maxInventorySteps bounds the work of building an inventory, whatever
// the shape of the graph: every manifest's tree is shown once, where it is
// first met, and the per-image walks that count shared bytes stop here.
const maxInventorySteps = 2_000_000

// tree turns the graph into Nodes: images at the top, platforms as
// children, referrers under what they refer to.
type tree struct {
	b      *Bundle
	cosign map[digest.Digest][]graph.Root // cosign tags by subject
	shown  map[digest.Digest]bool
	sizes  map[digest.Digest]int64
	steps  int
	cut    bool
}

func newTree(b *Bundle) *tree {
	t := &tree{b: b, cosign: map[digest.Digest][]graph.Root{}, shown: map[digest.Digest]bool{}, sizes: map[digest.Digest]int64{}}
	for _, r := range b.Graph.Roots {
		if r.Kind == graph.CosignTag {
			t.cosign[r.Subject] = append(t.cosign[r.Subject], r)
		}
	}
	return t
}

func (t *tree) build(inv *Inventory) {
	reach := map[digest.Digest]int{} // blob -> images reaching it
	walked := map[digest.Digest]bool{}
	for _, r := range t.b.Graph.Roots {
		if r.Kind != graph.Image {
			continue
		}
		n := t.node(r.Desc, r.Name, 0)
		inv.Images = append(inv.Images, n)
		if !walked[r.Desc.Digest] {
			walked[r.Desc.Digest] = true
			for b := range t.closure(r.Desc.Digest) {
				reach[b]++
			}
		}
	}
	for b, count := range reach {
		if count > 1 {
			inv.SharedBytes += t.b.Present[b]
		}
	}
	inv.Truncated = t.cut
}

// step counts work, and says when the budget is spent.
func (t *tree) step() bool {
	t.steps++
	if t.steps > maxInventorySteps {
		t.cut = true
		return false
	}
	return true
}

// maxTreeDepth bounds how deep the inventory nests (a long chain of
// signatures on signatures): deeper manifests are listed without trees.
const maxTreeDepth = 100

// node builds the node of d. A manifest shown before gets no tree.
func (t *tree) node(d ocispec.Descriptor, ref string, depth int) *Node {
	n := &Node{Reference: ref, Digest: d.Digest.String(), MediaType: d.MediaType, ArtifactType: d.ArtifactType, Size: t.size(d)}
	if d.Platform != nil {
		n.Platform = platformString(d.Platform)
	}
	gn := t.b.Graph.Node(d.Digest)
	if gn == nil || gn.Manifest == nil {
		n.Annotations = interesting(d.Annotations, nil)
		return n
	}
	if n.MediaType == "" {
		n.MediaType = gn.MediaType()
	}
	if n.ArtifactType == "" && gn.Manifest.Subject != nil {
		n.ArtifactType = gn.Manifest.ArtifactTypeOf()
	}
	n.Annotations = interesting(d.Annotations, gn.Manifest.Annotations)
	if t.shown[d.Digest] || depth > maxTreeDepth || !t.step() {
		n.ShownAbove = true
		t.cut = t.cut || depth > maxTreeDepth
		return n
	}
	t.shown[d.Digest] = true
	t.addPlatforms(n, gn.Manifest, depth+1)
	for _, r := range gn.Referrers {
		n.Referrers = append(n.Referrers, t.node(referrerDesc(r), "", depth+1))
	}
	for _, r := range t.cosign[d.Digest] {
		n.Referrers = append(n.Referrers, t.node(r.Desc, r.Name, depth+1))
	}
	return n
}

func referrerDesc(r *graph.Node) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: r.MediaType(), Digest: r.Desc.Digest, Size: r.Desc.Size, ArtifactType: r.Manifest.ArtifactTypeOf()}
}

// addPlatforms adds an index's manifests as children, except buildx
// attestations, which go under the platform they describe.
func (t *tree) addPlatforms(n *Node, m *graph.Manifest, depth int) {
	var attestations []ocispec.Descriptor
	for _, c := range m.Manifests {
		if c.Annotations[graph.AnnotationDockerRefType] == graph.DockerRefTypeAttestation {
			attestations = append(attestations, c)
			continue
		}
		n.Children = append(n.Children, t.node(c, "", depth))
	}
	for _, a := range attestations {
		an := t.node(a, "", depth)
		i := slices.IndexFunc(n.Children, func(c *Node) bool { return c.Digest == a.Annotations[graph.AnnotationDockerRefDigest] })
		if i < 0 {
			n.Children = append(n.Children, an)
			continue
		}
		n.Children[i].Referrers = append(n.Children[i].Referrers, an)
	}
}

// size is a manifest's own size, its blobs' and its child manifests',
// computed once per manifest (children first, so without recursion).
// Blobs shared by two children count twice; the sum saturates.
func (t *tree) size(d ocispec.Descriptor) int64 {
	if s, ok := t.sizes[d.Digest]; ok {
		return s
	}
	gn := t.b.Graph.Node(d.Digest)
	if gn == nil || gn.Manifest == nil {
		return d.Size
	}
	// Post-order over the manifests below d, iteratively: a deep or
	// wide graph costs its size, not the stack.
	type frame struct {
		n    *graph.Node
		next int
	}
	stack := []frame{{n: gn}}
	t.sizes[d.Digest] = d.Size // placeholder, also a cycle guard
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		children := f.n.Children()
		if f.next < len(children) {
			c := children[f.next]
			f.next++
			if cn := t.b.Graph.Node(c.Digest); graph.IsManifest(c.MediaType) && cn != nil && cn.Manifest != nil {
				if _, done := t.sizes[c.Digest]; !done {
					t.sizes[c.Digest] = c.Size
					stack = append(stack, frame{n: cn})
				}
			}
			continue
		}
		total := f.n.Desc.Size
		for _, c := range children {
			s := c.Size
			if graph.IsManifest(c.MediaType) {
				if v, ok := t.sizes[c.Digest]; ok {
					s = v
				}
			}
			total = saturatingAdd(total, s)
		}
		t.sizes[f.n.Desc.Digest] = total
		stack = stack[:len(stack)-1]
	}
	return t.sizes[d.Digest]
}

func saturatingAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// closure lists the blobs an image reaches: through its manifests, their
// referrers and cosign tags, each manifest walked once.
func (t *tree) closure(root digest.Digest) map[digest.Digest]bool {
	blobs := map[digest.Digest]bool{}
	seen := map[digest.Digest]bool{root: true}
	queue := []digest.Digest{root}
	for len(queue) > 0 && t.step() {
		gn := t.b.Graph.Node(queue[0])
		queue = queue[1:]
		if gn == nil {
			continue
		}
		more := gn.Children()
		for _, r := range gn.Referrers {
			more = append(more, r.Desc)
		}
		for _, r := range t.cosign[gn.Desc.Digest] {
			more = append(more, r.Desc)
		}
		for _, c := range more {
			if t.b.Graph.Node(c.Digest) == nil {
				blobs[c.Digest] = true
			} else if !seen[c.Digest] {
				seen[c.Digest] = true
				queue = append(queue, c.Digest)
			}
		}
	}
	return blobs
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

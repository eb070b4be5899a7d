package graph

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrAbsent marks a manifest the bundle does not carry.
var ErrAbsent = errors.New("not in the bundle")

// Limits bound what Load holds. docs/LIMITS.md lists them with the
// archive reader's.
type Limits struct {
	Manifests     int   // manifests and indexes in one graph
	ManifestBytes int64 // their total size
	Depth         int   // levels of indexes (and subjects) below index.json
}

// DefaultLimits hold a bundle of 13,000 small images with two referrers
// each (40,000 manifests): measured at 40,000 manifests (20,000 images
// with an SBOM each), the peak resident memory of verify was 204 MiB, of
// inspect 207 MiB and of import 251 MiB, under the 256 MiB bundle holds
// to on any bundle within its limits.
var DefaultLimits = Limits{Manifests: 40_000, ManifestBytes: 32 << 20, Depth: 64}

// ErrLimit is wrapped by errors for a graph over one of its Limits.
var ErrLimit = errors.New("bundle over a limit")

// Getter returns the bytes of manifest d from the bundle, checked against
// d's digest and size, or an error wrapping ErrAbsent when the bundle does
// not hold it.
type Getter func(d ocispec.Descriptor) ([]byte, error)

// Node is one manifest or index of the graph.
type Node struct {
	Desc     ocispec.Descriptor // as the first descriptor that led to it
	Raw      []byte             // its exact bytes, to push
	Manifest *Manifest          // nil when Err is set
	Err      error              // absent, unreadable or unparsable
	// Referrers are the manifests of the graph whose subject this is,
	// by digest.
	Referrers []*Node
	level     int
}

// MediaType is what the manifest says it is, else what pointed at it.
func (n *Node) MediaType() string {
	if n.Manifest != nil && n.Manifest.MediaType != "" {
		return n.Manifest.MediaType
	}
	return n.Desc.MediaType
}

// PushDesc is the descriptor to push the node's bytes under.
func (n *Node) PushDesc() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: n.MediaType(), Digest: n.Desc.Digest, Size: n.Desc.Size}
}

// Children are the node's children, nil when it could not be read.
func (n *Node) Children() []ocispec.Descriptor {
	if n.Manifest == nil {
		return nil
	}
	return n.Manifest.Children()
}

// Subject is the digest of the node's subject, "" for none.
func (n *Node) Subject() digest.Digest {
	if n.Manifest == nil || n.Manifest.Subject == nil {
		return ""
	}
	return n.Manifest.Subject.Digest
}

// RootKind says what an index.json entry is.
type RootKind int

const (
	// Image is a named entry, or an unnamed one without a subject.
	Image RootKind = iota
	// Referrer is an unnamed entry whose manifest has a subject.
	Referrer
	// CosignTag is an entry named by a cosign tag <alg>-<hex>.sig|.att|.sbom.
	CosignTag
)

// Root is one entry of index.json.
type Root struct {
	Desc    ocispec.Descriptor
	Name    string // the reference it was exported from, "" for none
	Kind    RootKind
	Subject digest.Digest // of a Referrer or CosignTag
	Node    *Node         // nil when the entry is not a manifest
}

// Graph is index.json and every manifest it leads to, each read and parsed
// once. verify, inspect, import and serve all work from it.
type Graph struct {
	Index *Manifest
	Roots []Root
	nodes map[digest.Digest]*Node
	order []*Node
}

// Node returns the manifest d of the graph, or nil.
func (g *Graph) Node(d digest.Digest) *Node { return g.nodes[d] }

// Nodes lists the manifests in the order they were loaded: index.json's
// entries first, then level by level.
func (g *Graph) Nodes() []*Node { return g.order }

// Load reads index's entries and every manifest they lead to (children and
// subjects), each once whatever the number of paths to it. A manifest
// that cannot be read keeps its error on its node, for whatever needs it
// to fail alone; a graph over limits is refused whole.
func Load(ctx context.Context, index *Manifest, get Getter, limits Limits) (*Graph, error) {
	g := &Graph{Index: index, nodes: map[digest.Digest]*Node{}}
	var total int64
	visit := func(d ocispec.Descriptor, level int) error {
		if !IsManifest(d.MediaType) || d.Digest.Validate() != nil || g.nodes[d.Digest] != nil {
			return nil
		}
		if level > limits.Depth {
			return fmt.Errorf("%w: %s is %d levels below index.json, more than %d", ErrLimit, d.Digest, level, limits.Depth)
		}
		if len(g.order) >= limits.Manifests {
			return fmt.Errorf("%w: more than %d manifests", ErrLimit, limits.Manifests)
		}
		n := &Node{Desc: d, level: level}
		g.nodes[d.Digest] = n
		g.order = append(g.order, n)
		raw, err := get(d)
		if err != nil {
			n.Err = fmt.Errorf("manifest %s: %w", d.Digest, err)
			return nil
		}
		if total += int64(len(raw)); total > limits.ManifestBytes {
			return fmt.Errorf("%w: manifests over %d bytes in all", ErrLimit, limits.ManifestBytes)
		}
		m, err := Parse(d.MediaType, raw)
		if err != nil {
			n.Err = fmt.Errorf("manifest %s (%s): %w", d.Digest, d.MediaType, err)
			return nil
		}
		n.Raw, n.Manifest = raw, m
		return nil
	}
	for _, d := range index.Manifests {
		if err := visit(d, 0); err != nil {
			return nil, err
		}
	}
	// Level by level: order grows as the walk goes.
	for i := 0; i < len(g.order); i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		n := g.order[i]
		for _, c := range n.Children() {
			if err := visit(c, n.level+1); err != nil {
				return nil, err
			}
		}
		if n.Manifest != nil && n.Manifest.Subject != nil {
			if err := visit(*n.Manifest.Subject, n.level+1); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range g.order {
		if s := g.nodes[n.Subject()]; s != nil && n.Subject() != "" {
			s.Referrers = append(s.Referrers, n)
		}
	}
	for _, n := range g.order {
		slices.SortFunc(n.Referrers, func(a, b *Node) int { return cmp.Compare(a.Desc.Digest, b.Desc.Digest) })
	}
	g.Roots = make([]Root, 0, len(index.Manifests))
	for _, d := range index.Manifests {
		g.Roots = append(g.Roots, g.root(d))
	}
	return g, nil
}

func (g *Graph) root(d ocispec.Descriptor) Root {
	r := Root{Desc: d, Name: RootName(d), Node: g.nodes[d.Digest]}
	if s, ok := CosignSubject(r.Name); ok {
		r.Kind, r.Subject = CosignTag, s
		return r
	}
	if r.Name == "" && r.Node != nil && r.Node.Subject() != "" {
		r.Kind, r.Subject = Referrer, r.Node.Subject()
	}
	return r
}

// Annotations naming an image in index.json: containerd's full reference
// (which bundle writes beside ref.name), and the OCI ref.name, which other
// tools often set to a bare tag.
const AnnotationImageName = "io.containerd.image.name"

// RootName is the reference an index.json entry was exported from:
// containerd's full name when it has one, else ref.name.
func RootName(d ocispec.Descriptor) string {
	full := d.Annotations[AnnotationImageName]
	name := d.Annotations[ocispec.AnnotationRefName]
	if strings.Contains(full, "/") || name == "" {
		return full
	}
	return name
}

// cosignTag matches the tags cosign attaches signatures, attestations and
// SBOMs under: <alg>-<hex>.sig|.att|.sbom.
var cosignTag = regexp.MustCompile(`^(sha256|sha512)-([0-9a-f]{64,128})\.(sig|att|sbom)$`)

// IsCosignTag reports whether tag is a cosign attachment tag.
func IsCosignTag(tag string) bool { return cosignTag.MatchString(tag) }

// CosignSubject returns the subject a reference with a cosign tag names.
func CosignSubject(ref string) (digest.Digest, bool) {
	if !strings.HasSuffix(ref, ".sig") && !strings.HasSuffix(ref, ".att") && !strings.HasSuffix(ref, ".sbom") {
		return "", false // most names: no need for the expression
	}
	tag := ref[strings.LastIndexAny(ref, ":/")+1:]
	m := cosignTag.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(m[1]), m[2])
	return d, d.Validate() == nil
}

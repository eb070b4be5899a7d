package pack

import (
	"fmt"
	"slices"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Role is why a node is in the plan.
type Role string

// Roles of plan nodes.
const (
	RoleIndex       Role = "index"
	RoleManifest    Role = "manifest"
	RoleConfig      Role = "config"
	RoleLayer       Role = "layer"
	RoleReferrer    Role = "referrer"
	RoleAttestation Role = "attestation"
)

// Node is one object of the plan, present once whatever the number of
// images that reach it.
type Node struct {
	Desc ocispec.Descriptor
	Role Role     // the role in which the walk first met it
	Refs []string // the exported references that reach it, in order
	Repo string   // "host/repo" to fetch it from
}

// IsManifest reports whether the node is a manifest or index (as opposed
// to a config or layer blob).
func (n *Node) IsManifest() bool {
	switch n.Role {
	case RoleIndex, RoleManifest, RoleReferrer, RoleAttestation:
		return true
	}
	return false
}

// PlannedImage is one reference given on the command line.
type PlannedImage struct {
	Ref       string             // normalised: host/repo[:tag][@digest]
	Desc      ocispec.Descriptor // what Ref resolved to
	Platforms []string           // platforms of the children kept (index only)
	Referrers int                // referrers anywhere in its tree
	Size      int64              // bytes of all its nodes, for dedup accounting
	dropped   []string           // artifact types --artifact-type left out
	types     []string           // the artifact types asked for
}

// PlannedReferrer is a referrer manifest as index.json will list it.
type PlannedReferrer struct {
	Desc    ocispec.Descriptor // as the source listed it: artifactType, annotations
	Subject digest.Digest
	Via     string
	// TagRef is set for cosign-tag referrers: host/repo:sha256-<hex>.sig, so
	// that import can recreate the tag.
	TagRef string
}

// Plan is everything an export will write, decided before any blob is
// fetched, so it can be filtered first (incremental bundles).
type Plan struct {
	Images    []PlannedImage
	Nodes     []*Node // deduplicated by digest, in discovery order
	Referrers []PlannedReferrer
	Skipped   []string // foreign layers left out: "ref: digest"
	// Selections are the tags the spec's tag selections chose.
	Selections []Selection
}

// Filter returns a plan holding only the nodes keep accepts. Images and
// referrers stay listed: the far side is expected to have what was dropped.
func (p *Plan) Filter(keep func(*Node) bool) *Plan {
	out := *p
	out.Nodes = nil
	for _, n := range p.Nodes {
		if keep(n) {
			out.Nodes = append(out.Nodes, n)
		}
	}
	return &out
}

// Size is the sum of the sizes of the plan's nodes.
func (p *Plan) Size() int64 {
	var total int64
	for _, n := range p.Nodes {
		total += n.Desc.Size
	}
	return total
}

// smallBlob is the size under which a non-layer-like blob is written with
// the configs, ahead of the layers.
const smallBlob = 64 << 10

// WriteOrder is the order of blobs in the archive: manifests and indexes,
// then configs and other small blobs, then layers, so that a streaming
// importer can plan everything before the bulk arrives. Within a tier the
// plan order is kept, which makes archives reproducible.
func (p *Plan) WriteOrder() []*Node {
	tier := func(n *Node) int {
		switch {
		case n.IsManifest():
			return 0
		case n.Role == RoleConfig || n.Desc.Size <= smallBlob:
			return 1
		}
		return 2
	}
	out := slices.Clone(p.Nodes)
	slices.SortStableFunc(out, func(a, b *Node) int { return tier(a) - tier(b) })
	return out
}

// assembly builds a Plan from the discovered graph: a deterministic,
// sequential walk in memory, whatever order the concurrent discovery ran in.
type assembly struct {
	graph *discovery
	plan  *Plan
	nodes map[digest.Digest]*Node
	refs  map[digest.Digest]map[string]bool // referrer index.json entries already listed
}

func assemble(g *discovery, roots []root) (*Plan, error) {
	a := &assembly{
		graph: g,
		plan:  &Plan{},
		nodes: map[digest.Digest]*Node{},
		refs:  map[digest.Digest]map[string]bool{},
	}
	for _, r := range roots {
		img := PlannedImage{Ref: r.ref, Desc: r.desc, types: r.w.types}
		seen := map[digest.Digest]bool{}
		if err := a.visit(&img, r.repo, seen, r.desc, roleOf(r.desc)); err != nil {
			return nil, err
		}
		img.Platforms = g.platformsOf(r)
		a.plan.Images = append(a.plan.Images, img)
	}
	a.plan.Skipped = g.skippedList()
	return a.plan, nil
}

// visit adds d and what it reaches, as discovered in repo, to the plan. A
// node is fetched from the repository of the first root, in the order
// given, that reaches it: everything a root reaches lives in its
// repository.
func (a *assembly) visit(img *PlannedImage, repo string, seen map[digest.Digest]bool, d ocispec.Descriptor, role Role) error {
	if seen[d.Digest] {
		return nil // a cycle, or a blob shared inside one image
	}
	seen[d.Digest] = true
	img.Size += d.Size

	n := a.nodes[d.Digest]
	if n == nil {
		n = &Node{Desc: clean(d), Role: role, Repo: repo}
		a.nodes[d.Digest] = n
		a.plan.Nodes = append(a.plan.Nodes, n)
	}
	// Each image visits a node once (seen), so its reference is new here:
	// no search through the references of a node every image shares.
	n.Refs = append(n.Refs, img.Ref)

	e := a.graph.get(repo, d.Digest)
	if e == nil {
		return nil // a blob: config or layer
	}
	for _, t := range e.dropped {
		if !slices.Contains(img.dropped, t) {
			img.dropped = append(img.dropped, t)
		}
	}
	if e.manifest == nil {
		return fmt.Errorf("%s (%s) was not walked: this is a bug in bundle's planner", d.Digest, img.Ref)
	}
	for _, c := range e.children {
		if err := a.visit(img, repo, seen, c, childRole(e, c)); err != nil {
			return err
		}
	}
	for _, r := range e.referrers {
		if !seen[r.Descriptor.Digest] {
			img.Referrers++
		}
		a.addReferrer(e, r)
		if err := a.visit(img, repo, seen, r.Descriptor, RoleReferrer); err != nil {
			return err
		}
	}
	return nil
}

func (a *assembly) addReferrer(subject *entry, r foundReferrer) {
	tagRef := ""
	if r.cosign {
		tagRef = subject.repo + ":" + r.Tag
	}
	d := r.Descriptor.Digest
	if a.refs[d] == nil {
		a.refs[d] = map[string]bool{}
	}
	if a.refs[d][tagRef] {
		return
	}
	a.refs[d][tagRef] = true
	a.plan.Referrers = append(a.plan.Referrers, PlannedReferrer{
		Desc: r.Descriptor, Subject: subject.desc.Digest, Via: r.Via, TagRef: tagRef,
	})
}

// clean keeps what identifies the blob and drops what could send a fetch
// elsewhere (urls) or does not belong to the object itself (platform).
func clean(d ocispec.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:    d.MediaType,
		Digest:       d.Digest,
		Size:         d.Size,
		ArtifactType: d.ArtifactType,
	}
}

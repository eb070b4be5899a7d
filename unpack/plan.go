package unpack

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// maxPlanned bounds the (repository, object) pairs of one import: what the
// target is asked about and pushed. A bundle of 10,000 small signed images
// plans about 100,000; the bound keeps a small hostile index.json that
// names one large graph in many repositories from planning without end.
const maxPlanned = 4_000_000

// image is one index.json entry that lands under a name (or by digest).
type image struct {
	source string // the name in the bundle, or the digest when unnamed
	repo   string
	tag    string // "" pushes by digest only
	root   graph.Root
	cosign bool // a cosign .sig/.att/.sbom tag, published after referrers
	err    error
	// there says the target has the image under its name already;
	// refused, why the preflight will not push it.
	there   bool
	refused error
	// referrers counts the referrers in the image's tree.
	referrers int
}

func (i *image) node() *graph.Node { return i.root.Node }

// repoPlan is what one target repository must end with.
type repoPlan struct {
	name      string
	need      map[digest.Digest]bool // manifests and blobs
	images    []*image
	levels    [][]*graph.Node // the images' manifests, children before parents
	refLevels [][]*graph.Node // the manifests the referrers bring
	blobs     []ocispec.Descriptor
	referrers map[digest.Digest][]*graph.Node // subject -> referrers to list
	// tags are the tags of the images rooted at a manifest: it is pushed
	// under the first one, which stores and tags it in one request.
	tags map[digest.Digest][]string
}

// plan is the whole import, worked out before anything is pushed. Every
// step is linear in the graph and the repositories' contents.
type plan struct {
	g        *graph.Graph
	images   []*image
	repos    map[string]*repoPlan
	names    []string // repository names, sorted
	listed   map[digest.Digest]bool
	blobs    map[digest.Digest]ocispec.Descriptor
	planned  int
	notice   func(string, ...any)
	orphaned []*graph.Node // referrers whose subject no image contains
}

func newPlan(g *graph.Graph, t target, notice func(string, ...any)) (*plan, error) {
	p := &plan{g: g, repos: map[string]*repoPlan{}, listed: map[digest.Digest]bool{}, blobs: map[digest.Digest]ocispec.Descriptor{}, notice: notice}
	for _, r := range g.Roots {
		if r.Kind == graph.Referrer {
			p.listed[r.Desc.Digest] = true
			continue
		}
		p.images = append(p.images, p.image(r, t))
	}
	for _, im := range p.images {
		if im.err != nil {
			continue
		}
		rp := p.repo(im.repo)
		rp.images = append(rp.images, im)
		if im.tag != "" && !im.cosign {
			rp.tags[im.root.Desc.Digest] = append(rp.tags[im.root.Desc.Digest], im.tag)
		}
		if err := p.close(rp, im.root.Desc); err != nil {
			return nil, err
		}
	}
	p.names = slices.Sorted(maps.Keys(p.repos))
	placed := map[digest.Digest]bool{}
	for _, name := range p.names {
		rp := p.repos[name]
		rp.levels = levels(p.g, rp.need)
		before := maps.Clone(rp.need)
		if err := p.placeReferrers(rp, placed); err != nil {
			return nil, err
		}
		added := map[digest.Digest]bool{}
		for d := range rp.need {
			if !before[d] {
				added[d] = true
			}
		}
		rp.refLevels = levels(p.g, added)
		rp.blobs = p.blobsIn(rp)
	}
	for _, r := range g.Roots {
		if r.Kind == graph.Referrer && !placed[r.Desc.Digest] {
			p.orphaned = append(p.orphaned, r.Node)
			notice("referrer %s refers to %s, which no imported image contains: skipped", r.Desc.Digest, r.Subject)
		}
	}
	if err := p.countReferrers(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *plan) repo(name string) *repoPlan {
	rp := p.repos[name]
	if rp == nil {
		rp = &repoPlan{name: name, need: map[digest.Digest]bool{}, referrers: map[digest.Digest][]*graph.Node{}, tags: map[digest.Digest][]string{}}
		p.repos[name] = rp
	}
	return rp
}

func (p *plan) image(r graph.Root, t target) *image {
	im := &image{source: r.Name, root: r, cosign: r.Kind == graph.CosignTag}
	if r.Name == "" {
		im.source = r.Desc.Digest.String()
		if t.prefix == "" {
			im.err = fmt.Errorf("image %s has no name in the bundle: give --target HOST/REPOSITORY to name its repository", r.Desc.Digest)
			return im
		}
		im.repo = t.prefix
		p.notice("image %s has no name in the bundle: pushing it by digest to %s", r.Desc.Digest, t.ref(im.repo, "", r.Desc.Digest))
		return im
	}
	m, err := t.mapName(r.Name)
	if err != nil {
		im.err = err
		return im
	}
	im.repo, im.tag = m.repo, m.tag
	if m.bare {
		p.notice("image %q has only a tag in the bundle: pushing it to repository %s", r.Name, t.host+"/"+m.repo)
	}
	return im
}

// close adds d and everything below it to rp, and returns the manifests
// it added, for the referrer placement to look at.
func (p *plan) close(rp *repoPlan, d ocispec.Descriptor) error {
	_, err := p.closeFrom(rp, d)
	return err
}

func (p *plan) closeFrom(rp *repoPlan, d ocispec.Descriptor) ([]*graph.Node, error) {
	var added []*graph.Node
	queue := []ocispec.Descriptor{d}
	for len(queue) > 0 {
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if rp.need[d.Digest] {
			continue
		}
		if p.planned++; p.planned > maxPlanned {
			return nil, fmt.Errorf("the bundle asks for more than %d objects across its repositories (a limit of bundle): split it", maxPlanned)
		}
		rp.need[d.Digest] = true
		n := p.g.Node(d.Digest)
		if n == nil {
			if _, ok := p.blobs[d.Digest]; !ok {
				p.blobs[d.Digest] = d
			}
			continue
		}
		added = append(added, n)
		queue = append(queue, n.Children()...)
	}
	return added, nil
}

// placeReferrers puts into rp every listed referrer of what rp holds, and
// what those need, and their referrers in turn: one pass over a queue of
// the repository's manifests, each looked at once.
func (p *plan) placeReferrers(rp *repoPlan, placed map[digest.Digest]bool) error {
	var queue []*graph.Node
	for d := range rp.need {
		if n := p.g.Node(d); n != nil {
			queue = append(queue, n)
		}
	}
	// A deterministic order, whatever the map's.
	slices.SortFunc(queue, func(a, b *graph.Node) int { return cmp.Compare(a.Desc.Digest, b.Desc.Digest) })
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, r := range n.Referrers {
			if !p.listed[r.Desc.Digest] || r.Err != nil {
				continue
			}
			rp.referrers[n.Desc.Digest] = append(rp.referrers[n.Desc.Digest], r)
			placed[r.Desc.Digest] = true
			added, err := p.closeFrom(rp, r.Desc)
			if err != nil {
				return err
			}
			queue = append(queue, added...)
		}
	}
	return nil
}

// blobsIn lists the blobs (not manifests) rp needs, sorted.
func (p *plan) blobsIn(rp *repoPlan) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for d := range rp.need {
		if p.g.Node(d) == nil {
			out = append(out, p.blobs[d])
		}
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return cmp.Compare(a.Digest, b.Digest) })
	return out
}

// levels splits the manifests of need into levels: each holds only
// manifests whose child manifests are all in earlier levels, so that a
// level can be pushed side by side. Iterative, each manifest once.
func levels(g *graph.Graph, need map[digest.Digest]bool) [][]*graph.Node {
	level := map[digest.Digest]int{}
	type frame struct {
		n    *graph.Node
		next int
	}
	var out [][]*graph.Node
	roots := slices.Sorted(maps.Keys(need))
	for _, d := range roots {
		n := g.Node(d)
		if n == nil {
			continue
		}
		if _, done := level[d]; done {
			continue
		}
		level[d] = -1 // on the stack
		stack := []frame{{n: n}}
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			children := f.n.Children()
			if f.next < len(children) {
				c := g.Node(children[f.next].Digest)
				f.next++
				if c != nil && need[c.Desc.Digest] {
					if _, seen := level[c.Desc.Digest]; !seen {
						level[c.Desc.Digest] = -1
						stack = append(stack, frame{n: c})
					}
				}
				continue
			}
			l := 0
			for _, c := range children {
				if cl, ok := level[c.Digest]; ok && need[c.Digest] && g.Node(c.Digest) != nil && cl+1 > l {
					l = cl + 1
				}
			}
			level[f.n.Desc.Digest] = l
			for len(out) <= l {
				out = append(out, nil)
			}
			out[l] = append(out[l], f.n)
			stack = stack[:len(stack)-1]
		}
	}
	return out
}

// countReferrers credits each image with the referrers in its tree: a walk
// from each distinct root over children and listed referrers, each
// manifest once per root.
func (p *plan) countReferrers() error {
	counts := map[digest.Digest]int{}
	for _, im := range p.images {
		if im.err != nil {
			continue
		}
		d := im.root.Desc.Digest
		if n, ok := counts[d]; ok {
			im.referrers = n
			continue
		}
		seen := map[digest.Digest]bool{d: true}
		queue := []digest.Digest{d}
		n := 0
		for len(queue) > 0 {
			node := p.g.Node(queue[0])
			queue = queue[1:]
			if node == nil {
				continue
			}
			if p.planned++; p.planned > maxPlanned {
				return fmt.Errorf("the bundle asks for more than %d objects across its images (a limit of bundle): split it", maxPlanned)
			}
			next := node.Children()
			for _, r := range node.Referrers {
				if p.listed[r.Desc.Digest] && !seen[r.Desc.Digest] {
					n++
				}
				next = append(next, r.Desc)
			}
			for _, c := range next {
				if !seen[c.Digest] && p.g.Node(c.Digest) != nil && (p.listed[c.Digest] || !isReferrerOf(p.g, c.Digest)) {
					seen[c.Digest] = true
					queue = append(queue, c.Digest)
				}
			}
		}
		counts[d] = n
		im.referrers = n
	}
	return nil
}

// isReferrerOf reports whether d is a manifest with a subject: referrers
// are walked only when listed.
func isReferrerOf(g *graph.Graph, d digest.Digest) bool {
	n := g.Node(d)
	return n != nil && n.Subject() != ""
}

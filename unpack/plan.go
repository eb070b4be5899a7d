package unpack

import (
	"fmt"
	"sort"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// image is one named (or unnamed) root of index.json as it lands.
type image struct {
	source string // the name in the bundle, or the digest when unnamed
	repo   string
	tag    string // "" pushes by digest only
	desc   ocispec.Descriptor
	cosign bool // a cosign .sig/.att/.sbom tag, published after referrers
	err    error
}

// referrer is a manifest with a subject, pushed into every repository its
// subject lands in.
type referrer struct {
	desc    ocispec.Descriptor // as the referrers list reports it
	subject ocispec.Descriptor
}

// plan is the whole import, worked out before anything is pushed.
type plan struct {
	g         *bundleGraph
	images    []*image
	referrers []referrer
	// repos: for each target repository, every digest (manifest or blob)
	// that must be there.
	repos map[string]map[digest.Digest]bool
}

func newPlan(g *bundleGraph, t target, notice func(string, ...any)) *plan {
	p := &plan{g: g, repos: map[string]map[digest.Digest]bool{}}
	for _, d := range g.index.Manifests {
		name := sourceName(d)
		n := g.manifests[d.Digest]
		if name == "" && n.m != nil && n.m.Subject != nil {
			p.referrers = append(p.referrers, referrer{desc: referrerDesc(n), subject: *n.m.Subject})
			continue
		}
		p.images = append(p.images, p.image(d, name, t, notice))
	}
	for _, im := range p.images {
		if im.err == nil {
			p.addClosure(im.repo, im.desc.Digest)
		}
	}
	p.placeReferrers(notice)
	return p
}

func (p *plan) image(d ocispec.Descriptor, name string, t target, notice func(string, ...any)) *image {
	im := &image{source: name, desc: d}
	if name == "" {
		im.source = d.Digest.String()
		if t.prefix == "" {
			im.err = fmt.Errorf("image %s has no name in the bundle: give --target HOST/REPOSITORY to name its repository", d.Digest)
			return im
		}
		im.repo = t.prefix
		notice("image %s has no name in the bundle: pushing it by digest to %s", d.Digest, t.ref(im.repo, "", d.Digest))
		return im
	}
	m, err := t.mapName(name)
	if err != nil {
		im.err = err
		return im
	}
	im.repo, im.tag, im.cosign = m.repo, m.tag, isCosignTag(m.tag)
	if m.bare {
		notice("image %q has only a tag in the bundle: pushing it to repository %s", name, t.host+"/"+m.repo)
	}
	return im
}

// referrerDesc is the descriptor a referrers list carries for n.
func referrerDesc(n *node) ocispec.Descriptor {
	d := n.pushDesc()
	d.ArtifactType = n.m.ArtifactTypeOf()
	d.Annotations = n.m.Annotations
	return d
}

// addClosure marks root and everything below it as needed in repo.
func (p *plan) addClosure(repo string, root digest.Digest) {
	need := p.repos[repo]
	if need == nil {
		need = map[digest.Digest]bool{}
		p.repos[repo] = need
	}
	var walk func(d digest.Digest)
	walk = func(d digest.Digest) {
		if need[d] {
			return
		}
		need[d] = true
		if n := p.g.manifests[d]; n != nil && n.m != nil {
			for _, c := range n.m.Children() {
				walk(c.Digest)
			}
		}
	}
	walk(root)
}

// placeReferrers puts each referrer into every repository of its subject,
// repeating until referrers of referrers have found their place too.
func (p *plan) placeReferrers(notice func(string, ...any)) {
	placed := map[digest.Digest]map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, r := range p.referrers {
			for _, repo := range p.repoNames() {
				if !p.repos[repo][r.subject.Digest] || placed[r.desc.Digest][repo] {
					continue
				}
				if placed[r.desc.Digest] == nil {
					placed[r.desc.Digest] = map[string]bool{}
				}
				placed[r.desc.Digest][repo] = true
				p.addClosure(repo, r.desc.Digest)
				changed = true
			}
		}
	}
	for _, r := range p.referrers {
		if len(placed[r.desc.Digest]) == 0 {
			notice("referrer %s (%s) refers to %s, which no imported image contains: skipped", r.desc.Digest, r.desc.ArtifactType, r.subject.Digest)
		}
	}
}

func (p *plan) repoNames() []string {
	out := make([]string, 0, len(p.repos))
	for r := range p.repos {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// referrersIn lists, per subject, the referrers to publish in repo.
func (p *plan) referrersIn(repo string) map[digest.Digest][]referrer {
	out := map[digest.Digest][]referrer{}
	for _, r := range p.referrers {
		if p.repos[repo][r.desc.Digest] {
			out[r.subject.Digest] = append(out[r.subject.Digest], r)
		}
	}
	return out
}

// blobsIn lists the blobs (not manifests) needed in repo, sorted.
func (p *plan) blobsIn(repo string) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for d := range p.repos[repo] {
		if _, isManifest := p.g.manifests[d]; isManifest {
			continue
		}
		if b, ok := p.g.blobs[d]; ok {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out
}

// manifestOrder lists the manifests needed in repo, children before parents.
func (p *plan) manifestOrder(repo string, roots []digest.Digest) []*node {
	var out []*node
	seen := map[digest.Digest]bool{}
	var walk func(d digest.Digest)
	walk = func(d digest.Digest) {
		n := p.g.manifests[d]
		if n == nil || seen[d] {
			return
		}
		seen[d] = true
		if n.m != nil {
			for _, c := range n.m.Children() {
				if graph.IsManifest(c.MediaType) {
					walk(c.Digest)
				}
			}
		}
		out = append(out, n)
	}
	for _, r := range roots {
		walk(r)
	}
	return out
}

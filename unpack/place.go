package unpack

import (
	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/graph"
)

// Placement is what one repository holds when a bundle is imported under a
// prefix. bundle serve names its repositories and tags from it, so that a
// client pulling from serve sees exactly what import would push.
type Placement struct {
	Repo string
	// Tags maps each tag (cosign tags included) to its manifest.
	Tags map[string]digest.Digest
	// Contents holds every manifest and blob the repository needs: its
	// images, their children, and their referrers' trees.
	Contents map[digest.Digest]bool
	// Referrers lists, for each subject in the repository, the referrers
	// placed with it, sorted by digest.
	Referrers map[digest.Digest][]*graph.Node
}

// Place works out the repositories a bundle's graph lands in under prefix
// ("" for none), with the same plan import follows. Images that cannot be
// named (no repository and no prefix) are reported through notice and
// left out.
func Place(g *graph.Graph, prefix string, notice func(format string, args ...any)) ([]Placement, error) {
	if notice == nil {
		notice = func(string, ...any) {}
	}
	p, err := newPlan(g, target{host: "<serve>", prefix: prefix}, notice)
	if err != nil {
		return nil, err
	}
	for _, im := range p.images {
		if im.err != nil {
			notice("%v", im.err)
		}
	}
	out := make([]Placement, 0, len(p.names))
	for _, name := range p.names {
		rp := p.repos[name]
		pl := Placement{Repo: name, Tags: map[string]digest.Digest{}, Contents: rp.need, Referrers: rp.referrers}
		for _, im := range rp.images {
			if im.tag != "" {
				pl.Tags[im.tag] = im.root.Desc.Digest
			}
		}
		out = append(out, pl)
	}
	return out, nil
}

package pack

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/verify"
)

// leftOut is what --since took out of the plan.
type leftOut struct {
	bases []string        // the bases' identities: digests of their index.json
	blobs []digest.Digest // sorted
	bytes int64
}

// loadBases reads what earlier bundles or receipts say the far side holds.
// Several make a chain: everything any of them carried is left out.
func loadBases(ctx context.Context, paths []string) ([]string, map[digest.Digest]map[string]bool, error) {
	var ids []string
	held := map[digest.Digest]map[string]bool{}
	for _, p := range paths {
		r, err := verify.LoadBase(ctx, p)
		if err != nil {
			return nil, nil, fmt.Errorf("--since %s: %w", p, err)
		}
		if !slices.Contains(ids, r.Bundle) {
			ids = append(ids, r.Bundle)
		}
		for d, repos := range r.Held() {
			if held[d] == nil {
				held[d] = map[string]bool{}
			}
			for repo := range repos {
				held[d][repo] = true
			}
		}
	}
	return ids, held, nil
}

// cut filters the plan: blobs the bases hold stay behind; manifests and
// indexes always travel, being small and what import pushes and tags. A
// blob stays behind only when the base holds it in a repository of an
// image that needs it now: the importer asks those repositories for it,
// and mounts it from there into the others.
func cut(p *Plan, ids []string, held map[digest.Digest]map[string]bool) (*Plan, *leftOut) {
	lo := &leftOut{bases: ids}
	out := p.Filter(func(n *Node) bool {
		if n.IsManifest() || !heldFor(n, held[n.Desc.Digest]) {
			return true
		}
		lo.blobs = append(lo.blobs, n.Desc.Digest)
		lo.bytes += n.Desc.Size
		return false
	})
	slices.Sort(lo.blobs)
	return out, lo
}

// annotations are what index.json says of the base.
func (lo *leftOut) annotations() map[string]string {
	return map[string]string{
		verify.AnnotationBase:          strings.Join(lo.bases, ","),
		verify.AnnotationLeftOut:       strconv.Itoa(len(lo.blobs)),
		verify.AnnotationLeftOutDigest: verify.LeftOutDigest(lo.blobs).String(),
	}
}

// heldFor reports whether a repository of an image that reaches n holds it.
func heldFor(n *Node, repos map[string]bool) bool {
	for _, ref := range n.Refs {
		if repos[verify.RepositoryPath(ref)] {
			return true
		}
	}
	return false
}

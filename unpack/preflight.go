package unpack

import (
	"context"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/referrers"
)

// Image states in the report.
const (
	StatePush       = "push"          // a dry run would push it
	StatePushed     = "pushed"        // the import pushed it
	StateThere      = "already there" // the target has it under its name
	StateRefused    = "refused"       // the preflight said no: nothing of it was pushed
	StateFailed     = "failed"        // it failed while pushing
	StateNotReached = "not pushed"    // the import stopped before it
)

// preflight asks the target, before anything is pushed, what the real
// import would meet, so that a dry run says what the import will do and an
// import that cannot work stops before its first write: whether each image
// is there already (then nothing below it is asked for or pushed again),
// whether the referrers API is there when --referrers-mode api requires
// it, and whether a sparse index has its absent platforms on the target.
// A failed question means the target is unreachable or refuses us: the
// import stops.
func (im *importer) preflight(ctx context.Context) error {
	if err := im.checkReferrersMode(ctx); err != nil {
		return err
	}
	images := im.plan.images
	err := forEach(ctx, im.opts.Concurrency, len(images), func(ctx context.Context, k int) error {
		i := images[k]
		if i.err != nil {
			return nil
		}
		there, err := im.reg.has(ctx, i.repo, i.tag, i.root.Desc.Digest)
		if err != nil {
			return fmt.Errorf("asking %s for %s: %w", im.reg.name(i.repo), im.t.ref(i.repo, i.tag, i.root.Desc.Digest), err)
		}
		i.there = there
		return nil
	})
	if err != nil {
		return err
	}
	for _, i := range images {
		if i.there {
			im.cover(i.repo, i.root.Desc.Digest)
		}
	}
	if err := im.checkBase(ctx); err != nil {
		return err
	}
	return im.checkSparse(ctx)
}

// cover marks d and everything below it as on the target already: a
// registry holds a manifest only when it holds its children and blobs.
func (im *importer) cover(repo string, d digest.Digest) {
	queue := []digest.Digest{d}
	for len(queue) > 0 {
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if _, done := im.state(repo, d); done {
			continue
		}
		im.setState(repo, d, nil)
		for _, c := range childrenOf(im.node(d)) {
			if im.node(c.Digest) != nil {
				queue = append(queue, c.Digest)
			} else {
				im.markBlobThere(repo, c.Digest)
			}
		}
	}
}

func (im *importer) markBlobThere(repo string, d digest.Digest) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.blobsThere[repo] == nil {
		im.blobsThere[repo] = map[digest.Digest]bool{}
	}
	if !im.blobsThere[repo][d] {
		im.blobsThere[repo][d] = true
		im.report.Skipped++
	}
}

func (im *importer) blobThere(repo string, d digest.Digest) bool {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.blobsThere[repo][d]
}

// checkReferrersMode refuses --referrers-mode api on a target without the
// API before anything is pushed, instead of after every image.
func (im *importer) checkReferrersMode(ctx context.Context) error {
	if im.reg.pub.Mode != referrers.ModeAPI || !im.hasReferrers() {
		return nil
	}
	has, err := im.reg.pub.HasAPI(ctx, im.reg.name(im.plan.names[0]))
	if err != nil {
		return err
	}
	if !has {
		return fmt.Errorf("--referrers-mode api, but %s has no referrers API (GET /v2/<name>/referrers/<digest> answers 404): import with --referrers-mode auto or tag; nothing was pushed", im.t.host)
	}
	return nil
}

// checkSparse finds the indexes whose absent platforms the target lacks
// too: the target would refuse them. Without --sparse-index their images
// are refused now; with it, the index is not pushed as it is, and tagging
// does what the option says.
func (im *importer) checkSparse(ctx context.Context) error {
	for _, i := range im.plan.images {
		n := i.node()
		if i.err != nil || i.there || n == nil || n.Manifest == nil || !graph.IsIndex(n.MediaType()) {
			continue
		}
		var lacking []digest.Digest
		for _, c := range n.Manifest.Manifests {
			if cn := im.node(c.Digest); cn == nil || !errors.Is(cn.Err, graph.ErrAbsent) {
				continue
			}
			has, err := im.reg.has(ctx, i.repo, "", c.Digest)
			if err != nil {
				return fmt.Errorf("asking %s for %s: %w", im.reg.name(i.repo), c.Digest, err)
			}
			if has {
				im.setState(i.repo, c.Digest, nil)
			} else {
				lacking = append(lacking, c.Digest)
			}
		}
		if len(lacking) == 0 {
			continue
		}
		err := fmt.Errorf("%w: index %s lists %d platforms that are neither in the bundle nor on %s (first %s); import with --sparse-index=single to tag the one kept platform manifest, or --sparse-index=rewrite to push a new index of the kept platforms",
			errSparse, n.Desc.Digest, len(lacking), im.t.host, lacking[0])
		im.setState(i.repo, n.Desc.Digest, err)
		if im.opts.SparseIndex == "" {
			i.refused = err
			continue
		}
		// What the option tags instead may be there from an earlier import.
		sub, _, serr := im.substitute(n)
		if serr != nil || i.tag == "" {
			continue
		}
		there, err := im.reg.has(ctx, i.repo, i.tag, sub.Digest)
		if err != nil {
			return fmt.Errorf("asking %s for %s: %w", im.reg.name(i.repo), sub.Digest, err)
		}
		if there {
			i.there = true
			for _, c := range n.Manifest.Manifests {
				if cn := im.node(c.Digest); cn != nil && cn.Err == nil {
					im.cover(i.repo, c.Digest)
				}
			}
		}
	}
	return nil
}

// has asks the target whether repo holds manifest d, under tag when
// given: one HEAD. Not found is an answer.
func (r *registry) has(ctx context.Context, repo, tag string, d digest.Digest) (bool, error) {
	ref := d.String()
	if tag != "" {
		ref = tag
	}
	have, err := r.client.ManifestDigest(ctx, r.name(repo), ref, graph.ManifestAccept)
	return have == d, err
}

// childrenOf is n's children; nil for a blob (n nil) or an unreadable node.
func childrenOf(n *graph.Node) []ocispec.Descriptor {
	if n == nil {
		return nil
	}
	return n.Children()
}

package unpack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/graph"
)

// errBaseMissing marks an incremental bundle whose base the target lacks.
var errBaseMissing = errors.New("the target lacks blobs this incremental bundle left out")

// checkBase is the preflight of an incremental bundle: every blob it left
// out because its base carried it must be on the target already, asked by
// HEAD, side by side, before anything is pushed. A blob found in another
// repository of the import will be mounted from there. If any is lacking
// the import stops: importing the base first is the fix, and pushing the
// rest would leave manifests nobody can pull. A stream cannot say which
// blobs it left out before it is read: then every blob is asked for, and
// the import stops when the target lacks more than the stream carries.
func (im *importer) checkBase(ctx context.Context) error {
	inc := im.b.Incremental()
	if inc == nil {
		return nil
	}
	var want map[digest.Digest]bool // nil: every blob (a stream)
	if im.b.Random {
		absent, ok := im.b.FromBase()
		if !ok {
			return fmt.Errorf("the bundle says %d blobs were left out for its base %s, but %d are absent and they are not that list: run bundle verify on it; nothing was pushed", inc.LeftOut, strings.Join(inc.Bases, ","), len(absent))
		}
		want = map[digest.Digest]bool{}
		for _, d := range absent {
			want[d.Digest] = true
		}
	}
	type question struct {
		repo string
		d    digest.Digest
	}
	var qs []question
	needed := map[digest.Digest]bool{}
	for _, name := range im.plan.names {
		for _, b := range im.plan.repos[name].blobs {
			if graph.IsForeign(b) {
				continue
			}
			needed[b.Digest] = true
			if (want == nil || want[b.Digest]) && !im.blobThere(name, b.Digest) {
				qs = append(qs, question{name, b.Digest})
			}
		}
	}
	answers := make([]bool, len(qs))
	err := forEach(ctx, im.opts.Concurrency, len(qs), func(ctx context.Context, i int) error {
		has, err := im.reg.blobExists(ctx, qs[i].repo, qs[i].d)
		if err != nil {
			return fmt.Errorf("asking %s for blob %s: %w", im.reg.name(qs[i].repo), qs[i].d, err)
		}
		answers[i] = has
		return nil
	})
	if err != nil {
		return err
	}
	somewhere := map[digest.Digest]bool{}
	for _, q := range qs {
		if im.holderOf(q.d) != "" {
			somewhere[q.d] = true
		}
	}
	for i, q := range qs {
		if answers[i] {
			somewhere[q.d] = true
		}
	}
	var lacking []string
	seen := map[digest.Digest]bool{}
	for _, q := range qs {
		if somewhere[q.d] || seen[q.d] {
			continue
		}
		seen[q.d] = true
		if len(lacking) < maxNamed {
			lacking = append(lacking, fmt.Sprintf("%s (%s)", q.d, im.imageIn(q.repo)))
		}
	}
	if want == nil {
		// A stream says which blobs it holds only once read. It holds
		// all but LeftOut of those it needs: if the target lacks more
		// than that, some left-out blob is certainly lacking. (Fewer is
		// checked blob by blob as the stream brings them.)
		if carried := len(needed) - inc.LeftOut; len(seen) > carried {
			return fmt.Errorf("%w: the target lacks %d of the %d blobs the bundle needs, but the bundle carries only %d (it left %d out), such as %s: import the base bundle %s first; nothing was pushed",
				errBaseMissing, len(seen), len(needed), carried, inc.LeftOut, strings.Join(lacking, ", "), strings.Join(inc.Bases, " or "))
		}
		return nil
	}
	if len(seen) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of the %d blobs left out are on no repository of %s, such as %s: import the base bundle %s first (bundle inspect shows a bundle's index.json digest); nothing was pushed",
		errBaseMissing, len(seen), len(want), im.t.host, strings.Join(lacking, ", "), strings.Join(inc.Bases, " or "))
}

// maxNamed is how many lacking blobs an error names.
const maxNamed = 3

// imageIn names an image of the import that lands in repo.
func (im *importer) imageIn(repo string) string {
	for _, i := range im.plan.images {
		if i.repo == repo && !i.cosign {
			return i.source
		}
	}
	return im.reg.name(repo)
}

// holderOf names a repository below an image the target has already that
// holds blob d, "" for none: a mount source needing no question.
func (im *importer) holderOf(d digest.Digest) string {
	im.mu.Lock()
	defer im.mu.Unlock()
	for _, name := range im.plan.names {
		if im.blobsThere[name][d] {
			return name
		}
	}
	return ""
}

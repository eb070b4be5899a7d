package pack

import (
	"context"
	"fmt"
	"slices"

	"github.com/containerd/platforms"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/spec"
	"github.com/bundle-dev/bundle/referrers"
)

// tagPageSize is how many tags a tag selection asks for per page.
const tagPageSize = 1000

// walkOpts is how one root is walked: what of it to keep.
type walkOpts struct {
	platforms []string
	matcher   platforms.Matcher // nil: every platform
	types     []string          // artifact types to keep; empty: all
	finder    referrerFinder    // nil: no referrer discovery
}

// target is a reference to resolve, with its walk.
type target struct {
	ref string
	w   *walkOpts
}

// Selection is what a tag selection of a spec chose from a repository's
// tag list.
type Selection struct {
	Repository string   `json:"repository"`
	Rule       string   `json:"rule"`
	Tags       []string `json:"tags"`
}

// targets turns the command line's references and the spec's entries into
// references to resolve, each with its walk options: the entry's over the
// command line's. Tag selections read the repository's tag list here.
func targets(ctx context.Context, src *source, refs []string, opts Options) ([]target, []Selection, error) {
	walks := map[string]*walkOpts{}
	walkFor := func(o spec.Options) (*walkOpts, error) {
		w := &walkOpts{platforms: opts.Platforms, types: opts.ArtifactTypes}
		if o.Platforms != nil {
			w.platforms = o.Platforms
		}
		if o.ArtifactTypes != nil {
			w.types = o.ArtifactTypes
		}
		refs := !opts.NoReferrers
		if o.Referrers != nil {
			refs = *o.Referrers
		}
		cosign := o.Cosign == nil || *o.Cosign
		k := fmt.Sprint(w.platforms, w.types, refs, cosign)
		if w := walks[k]; w != nil {
			return w, nil
		}
		m, err := platformMatcher(w.platforms)
		if err != nil {
			return nil, err
		}
		w.matcher = m
		if refs {
			w.finder = &referrers.Finder{Resolver: src.resolver, Client: src.client, Cosign: cosign, Fetched: src.handOver}
		}
		walks[k] = w
		return w, nil
	}
	var out []target
	var sels []Selection
	for _, r := range refs {
		w, err := walkFor(spec.Options{})
		if err != nil {
			return nil, nil, err
		}
		out = append(out, target{ref: r, w: w})
	}
	for _, img := range opts.Images {
		w, err := walkFor(img.Opts)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", img.Pos, err)
		}
		if img.Tags == nil {
			out = append(out, target{ref: img.Ref, w: w})
			continue
		}
		sel, err := selectTags(ctx, src.client, img, tagPageSize)
		if err != nil {
			return nil, nil, err
		}
		if len(sel.Tags) == 0 {
			msg := fmt.Sprintf("%s (%s): no tag of %s matches %s", img.Ref, img.Pos, sel.Repository, sel.Rule)
			if !opts.AllowEmpty {
				return nil, nil, fmt.Errorf("%s; check the rule against the repository's tags, or pass --allow-empty to export the rest", msg)
			}
			if opts.Notice != nil {
				opts.Notice("%s: left out (--allow-empty)", msg)
			}
		}
		// What was chosen is in the plan (Plan.Selections), printed with it.
		sels = append(sels, sel)
		for _, t := range sel.Tags {
			out = append(out, target{ref: sel.Repository + ":" + t, w: w})
		}
	}
	if len(out) == 0 {
		return nil, sels, fmt.Errorf("nothing to export: no tag selection matched any tag")
	}
	return out, sels, nil
}

// selectTags reads the repository's tag list (every page, n tags a page)
// and applies the entry's rule.
func selectTags(ctx context.Context, client *remote.Client, img spec.Image, n int) (Selection, error) {
	host, repo, _, _, err := remote.SplitReference(img.Ref)
	if err != nil {
		return Selection{}, fmt.Errorf("%s: %w", img.Pos, err)
	}
	name := host + "/" + repo
	tags, err := client.Tags(ctx, name, n, img.Tags.Match)
	if err != nil {
		return Selection{}, fmt.Errorf("%s: selecting tags: %w", img.Pos, remote.Explain(err, name))
	}
	return Selection{Repository: name, Rule: img.Tags.String(), Tags: slices.Clip(img.Tags.Select(tags))}, nil
}

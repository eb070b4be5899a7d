package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/unpack"
	"github.com/bundle-dev/bundle/verify"
)

// store is the union of the bundles served: every repository as bundle
// import would create it, and which bundle holds each object.
type store struct {
	repos   map[string]*repo
	names   []string // repository names, sorted
	blobs   map[digest.Digest]*verify.Bundle
	nodes   map[digest.Digest]*graph.Node
	bundles []*verify.Bundle
}

// repo is one served repository.
type repo struct {
	name     string
	tags     map[string]digest.Digest // tags of the bundles, cosign tags included
	tagNames []string                 // sorted, with the fallback tags
	contents map[digest.Digest]bool
	// referrers lists, for each subject, what the bundles attach to it.
	referrers map[digest.Digest][]*graph.Node
	// fallback holds the referrers tag schema's indexes, made up from the
	// referrers, by tag and by digest.
	fallback      map[string]digest.Digest
	fallbackBytes map[digest.Digest][]byte
	// from names, for each tag, the bundle it came from: for conflicts.
	from map[string]string
}

// openStore opens every bundle at paths through verify.Open (what verify
// approves is what serve serves) and merges them. A tag two bundles give
// different digests is refused, naming both.
func openStore(ctx context.Context, paths []string, prefix string, notice func(string, ...any)) (*store, error) {
	st := &store{repos: map[string]*repo{}, blobs: map[digest.Digest]*verify.Bundle{}, nodes: map[digest.Digest]*graph.Node{}}
	if err := st.open(ctx, paths, prefix, notice); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func (st *store) open(ctx context.Context, paths []string, prefix string, notice func(string, ...any)) error {
	for _, p := range paths {
		b, err := verify.Open(ctx, p, verify.Options{Notice: notice})
		if err != nil {
			return err
		}
		st.bundles = append(st.bundles, b)
		if !b.Random {
			return fmt.Errorf("bundle %s is a %s stream, which cannot be read at random: serve needs a .tar or a seekable .tar.zst (export it again with -o FILE.tar.zst or FILE.tar)", p, b.Compression)
		}
		if err := st.add(b, prefix, notice); err != nil {
			return err
		}
	}
	for _, r := range st.repos {
		if err := r.addFallbackTags(); err != nil {
			return err
		}
	}
	st.names = slices.Sorted(maps.Keys(st.repos))
	return nil
}

func (st *store) add(b *verify.Bundle, prefix string, notice func(string, ...any)) error {
	places, err := unpack.Place(b.Graph, prefix, func(format string, args ...any) {
		notice("%s: "+format, append([]any{b.Path}, args...)...)
	})
	if err != nil {
		return fmt.Errorf("bundle %s: %w", b.Path, err)
	}
	for d := range b.Present {
		if _, ok := st.blobs[d]; !ok {
			st.blobs[d] = b
		}
	}
	for _, n := range b.Graph.Nodes() {
		if n.Err == nil && n.Raw != nil && st.nodes[n.Desc.Digest] == nil {
			st.nodes[n.Desc.Digest] = n
		}
	}
	for _, pl := range places {
		r := st.repos[pl.Repo]
		if r == nil {
			r = &repo{name: pl.Repo, tags: map[string]digest.Digest{}, contents: map[digest.Digest]bool{},
				referrers: map[digest.Digest][]*graph.Node{}, from: map[string]string{}}
			st.repos[pl.Repo] = r
		}
		for tag, d := range pl.Tags {
			if have, ok := r.tags[tag]; ok && have != d {
				return fmt.Errorf("%s:%s is %s in %s but %s in %s: serve one of them, or give them different --prefix runs",
					pl.Repo, tag, have, r.from[tag], d, b.Path)
			}
			r.tags[tag] = d
			r.from[tag] = b.Path
		}
		for d := range pl.Contents {
			r.contents[d] = true
		}
		for s, refs := range pl.Referrers {
			r.referrers[s] = mergeNodes(r.referrers[s], refs)
		}
	}
	return nil
}

// mergeNodes is the union of two lists sorted by digest, still sorted.
func mergeNodes(a, b []*graph.Node) []*graph.Node {
	out := append(slices.Clone(a), b...)
	slices.SortFunc(out, func(x, y *graph.Node) int { return compareDigest(x.Desc.Digest, y.Desc.Digest) })
	return slices.CompactFunc(out, func(x, y *graph.Node) bool { return x.Desc.Digest == y.Desc.Digest })
}

func compareDigest(a, b digest.Digest) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// addFallbackTags gives every subject with referrers its referrers tag
// schema index, so that clients without the referrers API find them, unless
// a bundle carries a real tag of that name.
func (r *repo) addFallbackTags() error {
	r.fallback = map[string]digest.Digest{}
	r.fallbackBytes = map[digest.Digest][]byte{}
	for s, refs := range r.referrers {
		tag := graph.FallbackTag(s)
		if _, ok := r.tags[tag]; ok || len(refs) == 0 {
			continue
		}
		data, err := referrersIndex(refs, "")
		if err != nil {
			return fmt.Errorf("fallback tag %s:%s: %w", r.name, tag, err)
		}
		d := digest.FromBytes(data)
		r.fallback[tag] = d
		r.fallbackBytes[d] = data
	}
	r.tagNames = slices.Sorted(maps.Keys(r.tags))
	r.tagNames = append(r.tagNames, slices.Collect(maps.Keys(r.fallback))...)
	slices.Sort(r.tagNames)
	return nil
}

// descriptor is what a referrers list says of a referrer.
func descriptor(n *graph.Node) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:    n.MediaType(),
		Digest:       n.Desc.Digest,
		Size:         int64(len(n.Raw)),
		ArtifactType: n.Manifest.ArtifactTypeOf(),
		Annotations:  n.Manifest.Annotations,
	}
}

// referrersIndex is the image index listing refs, those of artifactType
// only when it is not "".
func referrersIndex(refs []*graph.Node, artifactType string) ([]byte, error) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, n := range refs {
		if n.Manifest == nil {
			continue
		}
		d := descriptor(n)
		if artifactType == "" || d.ArtifactType == artifactType {
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	return json.Marshal(idx)
}

// manifest finds ref (a tag or a digest) in r: its bytes and media type.
func (st *store) manifest(r *repo, ref string) ([]byte, string, digest.Digest, bool) {
	d, err := digest.Parse(ref)
	if err != nil {
		var ok bool
		if d, ok = r.tags[ref]; !ok {
			if d, ok = r.fallback[ref]; !ok {
				return nil, "", "", false
			}
		}
	}
	if data, ok := r.fallbackBytes[d]; ok {
		return data, ocispec.MediaTypeImageIndex, d, true
	}
	if !r.contents[d] {
		return nil, "", "", false
	}
	n := st.nodes[d]
	if n == nil {
		return nil, "", "", false
	}
	return n.Raw, n.MediaType(), d, true
}

// Close closes every bundle.
func (st *store) Close() error {
	var first error
	for _, b := range st.bundles {
		if err := b.Close(); err != nil && first == nil {
			first = err
		}
	}
	st.bundles = nil
	return first
}

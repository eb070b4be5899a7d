package unpack

import (
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

func TestLevelsPutChildrenBeforeParents(t *testing.T) {
	mk := func(name string, children ...*node) *node {
		n := &node{desc: ocispec.Descriptor{Digest: digest.FromString(name)}, m: &graph.Manifest{}}
		for _, c := range children {
			n.m.Manifests = append(n.m.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: c.desc.Digest})
		}
		return n
	}
	amd, arm, att := mk("amd64"), mk("arm64"), mk("attestation")
	idx := mk("index", amd, arm, att)
	other := mk("other image")
	outer := mk("index of indexes", idx, other)
	name := map[digest.Digest]string{}
	for _, n := range []*node{amd, arm, att, idx, other, outer} {
		name[n.desc.Digest] = map[*node]string{amd: "amd64", arm: "arm64", att: "att", idx: "index", other: "other", outer: "outer"}[n]
	}

	for _, tt := range []struct {
		name  string
		order []*node
		want  [][]string
	}{
		{"single manifest", []*node{other}, [][]string{{"other"}}},
		{"index after its platforms", []*node{amd, arm, att, idx}, [][]string{{"amd64", "arm64", "att"}, {"index"}}},
		{"nested indexes", []*node{amd, arm, att, idx, other, outer},
			[][]string{{"amd64", "arm64", "att", "other"}, {"index"}, {"outer"}}},
		{"child absent from the bundle", []*node{idx}, [][]string{{"index"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got [][]string
			for _, level := range levels(tt.order) {
				var names []string
				for _, n := range level {
					names = append(names, name[n.desc.Digest])
				}
				got = append(got, names)
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("levels = %q, want %q", got, tt.want)
			}
		})
	}
}

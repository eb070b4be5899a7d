package unpack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/verify"
)

// errAbsent marks content the bundle does not carry.
var errAbsent = errors.New("not in the bundle")

// node is one manifest or index of the bundle, held in memory (each at most
// 4 MiB) so that it can be pushed with its exact bytes.
type node struct {
	desc ocispec.Descriptor
	raw  []byte
	m    *graph.Manifest
	err  error // unreadable, absent or unparsable: whatever needs it fails
}

// mediaType is what the manifest says it is, which is what the registry
// must be told, falling back to the descriptor that pointed at it.
func (n *node) mediaType() string {
	if n.m != nil && n.m.MediaType != "" {
		return n.m.MediaType
	}
	return n.desc.MediaType
}

// pushDesc is the descriptor to push n's bytes under.
func (n *node) pushDesc() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: n.mediaType(), Digest: n.desc.Digest, Size: int64(len(n.raw))}
}

// bundleGraph is index.json and every manifest reachable from it; blobs are
// known by descriptor only.
type bundleGraph struct {
	index     ocispec.Index
	manifests map[digest.Digest]*node
	blobs     map[digest.Digest]ocispec.Descriptor
}

// manifestGetter returns the verified bytes of a manifest, or errAbsent.
type manifestGetter func(d ocispec.Descriptor) ([]byte, error)

// loadGraph walks from index.json down to every manifest. Problems are kept
// on the node that has them, so one bad image does not stop the others.
func loadGraph(idx ocispec.Index, get manifestGetter) *bundleGraph {
	g := &bundleGraph{index: idx, manifests: map[digest.Digest]*node{}, blobs: map[digest.Digest]ocispec.Descriptor{}}
	queue := append([]ocispec.Descriptor(nil), idx.Manifests...)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if _, seen := g.manifests[d.Digest]; seen {
			continue
		}
		n := &node{desc: d}
		g.manifests[d.Digest] = n
		raw, err := get(d)
		if err != nil {
			n.err = fmt.Errorf("manifest %s: %w", d.Digest, err)
			continue
		}
		m, err := graph.Parse(d.MediaType, raw)
		if err != nil {
			n.err = fmt.Errorf("manifest %s (%s): %w", d.Digest, d.MediaType, err)
			continue
		}
		n.raw, n.m = raw, m
		for _, c := range m.Children() {
			if graph.IsManifest(c.MediaType) {
				queue = append(queue, c)
			} else {
				g.blobs[c.Digest] = c
			}
		}
	}
	return g
}

// readManifest reads a manifest through the verifying reader, bounded.
func readManifest(r io.Reader, d ocispec.Descriptor) ([]byte, error) {
	if d.Size > graph.MaxManifestSize {
		return nil, graph.ErrTooLarge
	}
	return graph.ReadAll(verify.NewReader(r, d))
}

// parseIndex decodes index.json, bounded.
func parseIndex(r io.Reader) (ocispec.Index, error) {
	var idx ocispec.Index
	data, err := io.ReadAll(io.LimitReader(r, layout.MaxIndexSize+1))
	if err != nil {
		return idx, fmt.Errorf("reading index.json: %w", err)
	}
	if len(data) > layout.MaxIndexSize {
		return idx, fmt.Errorf("index.json is larger than 4 MiB: the bundle is damaged or not one of ours")
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, fmt.Errorf("decoding index.json: %w: the bundle is damaged", err)
	}
	return idx, nil
}

// layoutGetter reads manifests from a random-access layout.
func layoutGetter(l layout.Layout, present map[digest.Digest]int64) manifestGetter {
	return func(d ocispec.Descriptor) ([]byte, error) {
		if _, ok := present[d.Digest]; !ok {
			return nil, errAbsent
		}
		rc, err := l.Open(layout.BlobPath(d.Digest))
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return readManifest(rc, d)
	}
}

// presentBlobs lists the blobs a layout holds, with their sizes.
func presentBlobs(entries []layout.Entry) map[digest.Digest]int64 {
	out := map[digest.Digest]int64{}
	for _, e := range entries {
		if d, err := layout.ParseBlobPath(e.Name); err == nil {
			out[d] = e.Size
		}
	}
	return out
}

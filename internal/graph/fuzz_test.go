package graph

import (
	"bytes"
	"context"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzLoad loads a graph from a fuzzed index and two manifests ("@A" and
// "@B" in any of them stand for the manifests' digests, so that the fuzzer
// can link them, cycles included): it must never panic, must stay within
// its limits, and must load each manifest once.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@A","size":0}]}`),
		[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@B","size":0},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@B","size":0}]}`),
		[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"subject":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@A","size":0}}`))
	f.Add([]byte(`{"manifests":[{"digest":"@B"}]}`), []byte(`{}`), []byte(`{"layers":[{},{}]}`))
	f.Fuzz(func(t *testing.T, index, a, b []byte) {
		// Digests of the documents before substitution: a cycle needs a
		// fixed point, which the fuzzer cannot find; a link needs only this.
		da, db := digest.FromBytes(a), digest.FromBytes(b)
		sub := func(x []byte) []byte {
			x = bytes.ReplaceAll(x, []byte("@A"), []byte(da))
			return bytes.ReplaceAll(x, []byte("@B"), []byte(db))
		}
		blobs := map[digest.Digest][]byte{da: a, db: b}
		idx, err := ParseIndex(sub(index))
		if err != nil {
			return
		}
		calls := map[digest.Digest]int{}
		get := func(d ocispec.Descriptor) ([]byte, error) {
			calls[d.Digest]++
			if data, ok := blobs[d.Digest]; ok {
				return data, nil
			}
			return nil, ErrAbsent
		}
		limits := Limits{Manifests: 10, ManifestBytes: 1 << 20, Depth: 4}
		g, err := Load(context.Background(), idx, get, limits)
		if err != nil {
			return
		}
		for d, n := range calls {
			if n > 1 {
				t.Fatalf("manifest %s read %d times", d, n)
			}
		}
		if len(g.Nodes()) > limits.Manifests || len(g.Roots) != len(idx.Manifests) {
			t.Fatalf("%d nodes, %d roots for %d entries", len(g.Nodes()), len(g.Roots), len(idx.Manifests))
		}
	})
}

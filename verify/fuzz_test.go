package verify

import (
	"bytes"
	"io"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// FuzzManifestParse feeds an index.json and a manifest blob through
// parsing, the graph check, the inspect tree and its text. "@M" in the index
// stands for the manifest's digest, so that the fuzzer can link the two.
func FuzzManifestParse(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@M","size":2,"annotations":{"io.containerd.image.name":"a:1"}}]}`),
		[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"os":"linux","architecture":"arm64"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@M","size":1}]}`),
		[]byte(`{"schemaVersion":2,"config":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":3}]}`))
	f.Add([]byte(`{"schemaVersion":1,"fsLayers":[{}]}`), []byte(`{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","blobs":[{}],"refers":{"digest":"@M"}}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"md5:00","size":-1,"annotations":{"org.opencontainers.image.ref.name":"x:sha256-.sig"}}]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, index, manifest []byte) {
		s := newScan()
		d := digest.FromBytes(manifest)
		s.sizes[d] = int64(len(manifest))
		s.sizes[digest.FromString("{}")] = 2
		s.keepManifest(d, manifest)
		s.layoutSeen, s.indexSeen, s.complete = true, true, true
		index = bytes.ReplaceAll(index, []byte("@M"), []byte(d))
		if idx, err := parseIndex(index); err == nil {
			s.index = idx
		}
		rep := &Report{}
		checkGraph(s, rep)
		if s.index == nil {
			return
		}
		inv := &Inventory{}
		newTree(&contents{index: s.index, manifests: s.manifests, sizes: s.sizes}).build(inv)
		if err := inv.WriteText(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}

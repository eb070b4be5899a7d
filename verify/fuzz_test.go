package verify

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/layout"
)

// fuzzBundle writes index.json, a manifest and an empty JSON blob as a
// bundle. "@M" in the index stands for the manifest's digest, so that the
// fuzzer can link the two.
func fuzzBundle(t testing.TB, c layout.Compression, index, manifest []byte) []byte {
	d := digest.FromBytes(manifest)
	index = bytes.ReplaceAll(index, []byte("@M"), []byte(d))
	var buf bytes.Buffer
	w, err := layout.NewWriter(&buf, c, layout.WriterOptions{ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMetadata(index); err != nil {
		return nil
	}
	for _, b := range [][]byte{manifest, []byte("{}")} {
		if err := w.WriteEntry(layout.BlobPath(digest.FromBytes(b)), int64(len(b)), bytes.NewReader(b), false); err != nil {
			return nil
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fuzzSeeds(f *testing.F) {
	pairs := [][2]string{
		{`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@M","size":@S,"annotations":{"io.containerd.image.name":"a:1"}}]}`,
			`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"os":"linux","architecture":"arm64"}}]}`},
		{`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@M","size":@S}]}`,
			`{"schemaVersion":2,"config":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":3}]}`},
		{`{"schemaVersion":1,"fsLayers":[{}]}`, `{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","blobs":[{}],"refers":{"digest":"@M"}}`},
		{`{"schemaVersion":2,"manifests":[{"digest":"md5:00","size":-1,"annotations":{"org.opencontainers.image.ref.name":"x:sha256-.sig"}}]}`, `{}`},
	}
	for _, p := range pairs {
		index := bytes.ReplaceAll([]byte(p[0]), []byte("@S"), []byte(strconv.Itoa(len(p[1]))))
		f.Add(index, []byte(p[1]))
	}
}

// FuzzBundleViews builds a bundle from fuzzed metadata and reads it the
// ways bundle does: verify's check and import's open, from a seekable file
// and from a stream. What verify approves must open, with the same graph,
// whichever way it is read.
func FuzzBundleViews(f *testing.F) {
	fuzzSeeds(f)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, index, manifest []byte) {
		ctx := context.Background()
		for _, c := range []layout.Compression{layout.None, layout.Zstd, layout.Gzip} {
			data := fuzzBundle(t, c, index, manifest)
			if data == nil {
				return
			}
			p := filepath.Join(dir, "b")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := Check(ctx, p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fromFile := openView(t, p, nil)
			fromStream := openView(t, "-", data)
			if rep.OK && (fromFile == nil || fromStream == nil) {
				t.Fatalf("%s: verify approved a bundle that does not open: file %v stream %v", c, fromFile, fromStream)
			}
			if fromFile != nil && fromStream != nil && !slices.Equal(fromFile, fromStream) {
				t.Fatalf("%s: the file and the stream read differently:\n%v\n%v", c, fromFile, fromStream)
			}
			// Nothing in these bundles is damaged on the way: inspect
			// (metadata only) and verify (every byte) must agree.
			inv, err := Inspect(ctx, p, Options{})
			if (err == nil) != rep.OK {
				t.Fatalf("%s: inspect (%v) and verify (OK %v) disagree", c, err, rep.OK)
			}
			if err == nil {
				if err := inv.WriteText(io.Discard); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// openView opens a bundle as import does and describes what it sees:
// blobs, manifests and roots. nil when it does not open.
func openView(t *testing.T, path string, stdin []byte) []string {
	b, err := Open(context.Background(), path, Options{Stdin: bytes.NewReader(stdin)})
	if err != nil {
		return nil
	}
	defer b.Close()
	var view []string
	err = b.Blobs(context.Background(), func(e layout.Entry, d digest.Digest, r io.Reader) error {
		_, err := io.Copy(io.Discard, NewReader(r, ocispec.Descriptor{Digest: d, Size: e.Size}))
		view = append(view, e.Name+" "+strconv.FormatInt(e.Size, 10))
		return err
	})
	if err != nil {
		return nil
	}
	for _, n := range b.Graph.Nodes() {
		view = append(view, "manifest "+n.Desc.Digest.String()+" "+n.MediaType())
	}
	for _, r := range b.Graph.Roots {
		view = append(view, "root "+r.Name+" "+r.Desc.Digest.String())
	}
	return view
}

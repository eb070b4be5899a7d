package roundtrip

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/unpack"
	"github.com/bundle-dev/bundle/verify"
)

// crafted is a bundle built entry by entry, for the shapes no exporter
// writes.
type crafted struct {
	t     testing.TB
	blobs map[digest.Digest][]byte
	order []digest.Digest
	index []ocispec.Descriptor
}

func newCrafted(t testing.TB) *crafted { return &crafted{t: t, blobs: map[digest.Digest][]byte{}} }

func (c *crafted) put(mt string, data []byte) ocispec.Descriptor {
	d := digest.FromBytes(data)
	if _, ok := c.blobs[d]; !ok {
		c.blobs[d] = data
		c.order = append(c.order, d)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}
}

func (c *crafted) json(mt string, v any) ocispec.Descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.put(mt, data)
}

// image is a small image whose layer is seeded by name.
func (c *crafted) image(name string) ocispec.Descriptor {
	cfg := c.json(ocispec.MediaTypeImageConfig, map[string]string{"os": "linux", "architecture": "amd64", "name": name})
	layer := c.put(ocispec.MediaTypeImageLayerGzip, []byte("layer of "+name))
	return c.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
}

func (c *crafted) referrer(subject ocispec.Descriptor, name string) ocispec.Descriptor {
	empty := c.put(ocispec.MediaTypeEmptyJSON, []byte("{}"))
	layer := c.put("application/spdx+json", []byte("sbom of "+name))
	return c.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/spdx+json", Config: empty,
		Layers: []ocispec.Descriptor{layer}, Subject: &subject})
}

func (c *crafted) name(d ocispec.Descriptor, ref string) {
	d.Annotations = map[string]string{graph.AnnotationImageName: ref, ocispec.AnnotationRefName: ref}
	c.index = append(c.index, d)
}

func (c *crafted) indexJSON() []byte {
	data, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: c.index})
	if err != nil {
		c.t.Fatal(err)
	}
	return data
}

// archive writes the bundle as bundle does: metadata first, manifests
// before the other blobs.
func (c *crafted) archive(comp layout.Compression) []byte {
	var buf bytes.Buffer
	w, err := layout.NewWriter(&buf, comp, layout.WriterOptions{ChunkSize: 64 << 10})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := w.WriteMetadata(c.indexJSON()); err != nil {
		c.t.Fatal(err)
	}
	for _, manifests := range []bool{true, false} {
		for _, d := range c.order {
			if graph.IsDocument(c.blobs[d]) == manifests {
				if err := w.WriteEntry(layout.BlobPath(d), int64(len(c.blobs[d])), bytes.NewReader(c.blobs[d]), false); err != nil {
					c.t.Fatal(err)
				}
			}
		}
	}
	if err := w.Close(); err != nil {
		c.t.Fatal(err)
	}
	return buf.Bytes()
}

// rawEntry is one tar entry as another tool, or an attacker, writes it.
type rawEntry struct {
	hdr  tar.Header
	data []byte
	pax  string // a hand-made PAX header before it, records as "k=v\n"...
}

// rawTar writes entries with archive/tar, and PAX headers by hand (Go's
// writer refuses the sparse records an attacker uses).
func rawTar(t testing.TB, entries []rawEntry) []byte {
	var buf bytes.Buffer
	for _, e := range entries {
		if e.pax != "" {
			var recs string
			for _, kv := range strings.Split(strings.TrimSuffix(e.pax, "\n"), "\n") {
				recs += paxRecord(kv)
			}
			buf.Write(ustarHeader(t, "PaxHeaders/x", 'x', int64(len(recs))))
			buf.WriteString(recs)
			buf.Write(make([]byte, (512-len(recs)%512)%512))
		}
		tw := tar.NewWriter(&buf)
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

func paxRecord(kv string) string {
	n := len(kv) + 2
	for {
		rec := fmt.Sprintf("%d %s\n", n, kv)
		if len(rec) == n {
			return rec
		}
		n = len(rec)
	}
}

func ustarHeader(t testing.TB, name string, typ byte, size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(buf.Bytes()[:512])
	b[156] = typ
	copy(b[148:156], "        ")
	var sum int
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func reg(name string, data []byte) rawEntry {
	return rawEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644}, data: data}
}

// rawEntries is the crafted bundle as plain tar entries, metadata first.
func (c *crafted) rawEntries() []rawEntry {
	out := []rawEntry{reg(layout.LayoutFile, layout.LayoutBytes()), reg(layout.IndexFile, c.indexJSON())}
	for _, d := range c.order {
		out = append(out, reg(layout.BlobPath(d), c.blobs[d]))
	}
	return out
}

func gzipped(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hostileCase is one crafted bundle and the verdict every command must
// give it.
type hostileCase struct {
	name  string
	file  string // file name (its extension); "-" reads data from stdin
	data  []byte
	ok    bool
	error string // in the failures' messages
}

func hostileCases(t *testing.T) []hostileCase {
	var cases []hostileCase
	add := func(name, file string, data []byte, ok bool, errText string) {
		cases = append(cases, hostileCase{name, file, data, ok, errText})
	}
	small := func() *crafted {
		c := newCrafted(t)
		c.name(c.image("good"), "src.example/good/app:1")
		return c
	}

	// 1 and 2: a PAX sparse entry, which tar readers step over by
	// different amounts; with a size of 2^50 it was an endless blob.
	for _, size := range []int64{64, 1 << 50} {
		c := small()
		entries := c.rawEntries()
		sparse := reg(layout.BlobPath(digest.FromString("sparse")), make([]byte, 64))
		sparse.pax = fmt.Sprintf("GNU.sparse.major=1\nGNU.sparse.minor=0\nGNU.sparse.name=%s\nGNU.sparse.realsize=%d\n", sparse.hdr.Name, size)
		entries = append(entries[:2], append([]rawEntry{sparse}, entries[2:]...)...)
		add(fmt.Sprintf("PAX sparse entry of %d bytes", size), "b.tar", rawTar(t, entries), false, "sparse")
		add(fmt.Sprintf("PAX sparse entry of %d bytes, gzip", size), "b.tar.gz", gzipped(t, rawTar(t, entries)), false, "sparse")
	}

	// 3: many directory headers in one zstd frame: linear, and fine.
	{
		c := small()
		var dirs []rawEntry
		for range 20000 {
			dirs = append(dirs, rawEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "blobs/", Mode: 0o755}})
		}
		plain := rawTar(t, append(dirs, c.rawEntries()...))
		add("20,000 directory headers in one frame", "b.tar.zst", seekableZstd(t, plain, len(plain)), true, "")
	}

	// 4: 60 index levels, each listing the next twice: 2^60 paths.
	{
		c := newCrafted(t)
		level := c.image("leaf")
		for i := range 60 {
			level = c.json(ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
				Manifests: []ocispec.Descriptor{level, level, c.image(fmt.Sprint("side", i))}})
		}
		c.name(level, "src.example/deep/app:1")
		add("60 index levels each listing the next twice", "b.tar.zst", c.archive(layout.Zstd), true, "")
	}

	// 5: a manifest of 20,000 empty layers.
	{
		c := newCrafted(t)
		cfg := c.json(ocispec.MediaTypeImageConfig, map[string]string{"os": "linux"})
		m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + mustJSON(t, cfg) + `,"layers":[` + strings.Repeat("{},", 19999) + `{}]}`
		c.name(c.put(ocispec.MediaTypeImageManifest, []byte(m)), "src.example/wide/app:1")
		add("a manifest of 20,000 empty layers", "b.tar.zst", c.archive(layout.Zstd), false, "descriptors")
	}

	// 6: a blob before index.json, from standard input: spooled, bounded
	// by what the stream holds.
	{
		c := small()
		entries := c.rawEntries()
		entries = append(entries[2:], entries[0], entries[1])
		add("index.json last, from standard input", "-", rawTar(t, entries), true, "")
	}

	// 7: a long chain of referrers, each on the one before.
	{
		c := small()
		subject := c.index[0]
		subject.Annotations = nil
		for i := range 3000 {
			r := c.referrer(subject, fmt.Sprint(i))
			c.index = append(c.index, r)
			subject = r
		}
		add("a chain of 3,000 referrers", "b.tar.zst", c.archive(layout.Zstd), true, "")
	}

	// 8: terminal escapes in a name (the output escaping is tested in
	// cmd/bundle): the bundle itself is fine.
	{
		c := newCrafted(t)
		img := c.image("esc")
		img.Annotations = map[string]string{graph.AnnotationImageName: "src.example/esc/app:1", ocispec.AnnotationRefName: "src.example/esc/app:1", "org.opencontainers.image.description": "\x1b[2J\x1b]0;owned\x07"}
		c.index = append(c.index, img)
		add("terminal escapes in annotations", "b.tar", c.archive(layout.None), true, "")
	}

	// 9a: a seek table whose frame boundary is shifted.
	{
		data := bytes.Clone(small().archive(layout.Zstd))
		shiftFrame(t, data)
		add("a shifted frame boundary in the seek table", "b.tar.zst", data, false, "frame")
	}
	// 9b: a streamed bundle whose blob does not match its digest.
	{
		c := small()
		entries := c.rawEntries()
		last := &entries[len(entries)-1]
		last.data = bytes.Clone(last.data)
		last.data[0] ^= 0xff
		add("a damaged blob in a stream", "b.tar.gz", gzipped(t, rawTar(t, entries)), false, "does not match")
	}
	// 9c: a layout packed by hand with tar, directory entries and all.
	{
		c := small()
		entries := []rawEntry{reg(layout.LayoutFile, layout.LayoutBytes()), reg(layout.IndexFile, c.indexJSON()),
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "blobs/", Mode: 0o755}},
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "blobs/sha256/", Mode: 0o755}}}
		raw := c.rawEntries()[2:]
		for i := len(raw) - 1; i >= 0; i-- { // the manifest last, as readdir may
			entries = append(entries, raw[i])
		}
		add("a layout packed with tar -czf, directories and all", "b.tar.gz", gzipped(t, rawTar(t, entries)), true, "")
	}
	// 10: one flipped byte in index.json.
	{
		c := small()
		data := bytes.Clone(c.archive(layout.None))
		i := bytes.Index(data, []byte(`"manifests"`))
		data[i+2] ^= 0x01
		add("a flipped byte in index.json", "b.tar", data, false, "index.json")
	}
	return cases
}

func mustJSON(t testing.TB, v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// seekableZstd compresses a tar into frames of at most chunk bytes and
// appends a seek table, as another seekable writer would.
func seekableZstd(t testing.TB, plain []byte, chunk int) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out, table []byte
	frames := 0
	for off := 0; off < len(plain); off += chunk {
		part := plain[off:min(off+chunk, len(plain))]
		f := enc.EncodeAll(part, nil)
		out = append(out, f...)
		table = binary.LittleEndian.AppendUint32(table, uint32(len(f)))
		table = binary.LittleEndian.AppendUint32(table, uint32(len(part)))
		frames++
	}
	out = binary.LittleEndian.AppendUint32(out, 0x184D2A5E)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(table)+9))
	out = append(out, table...)
	out = binary.LittleEndian.AppendUint32(out, uint32(frames))
	out = append(out, 0)
	return binary.LittleEndian.AppendUint32(out, 0x8F92EAB1)
}

// shiftFrame moves 512 decompressed bytes from the first frame's entry in
// the seek table to the second's: the sums still add up.
func shiftFrame(t testing.TB, data []byte) {
	n := len(data)
	frames := int(binary.LittleEndian.Uint32(data[n-9:]))
	start := n - 9 - 8*frames
	first := start + 4
	second := start + 8 + 4
	binary.LittleEndian.PutUint32(data[first:], binary.LittleEndian.Uint32(data[first:])+512)
	binary.LittleEndian.PutUint32(data[second:], binary.LittleEndian.Uint32(data[second:])-512)
}

// TestHostileBundlesGetOneVerdict runs verify, inspect and import
// --dry-run on each crafted bundle: the three must agree, as they now read
// a bundle through one reader and one graph.
func TestHostileBundlesGetOneVerdict(t *testing.T) {
	target := testregistry.NewDistribution(t)
	for _, tc := range hostileCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := tc.file
			if path != "-" {
				path = filepath.Join(t.TempDir(), tc.file)
				if err := os.WriteFile(path, tc.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			stdin := func() io.Reader { return bytes.NewReader(tc.data) }
			rep, err := verify.Check(ctx, path, verify.Options{Stdin: stdin()})
			if err != nil {
				t.Fatal(err)
			}
			_, inspectErr := verify.Inspect(ctx, path, verify.Options{Stdin: stdin()})
			_, importErr := unpack.Import(ctx, path, unpack.Options{Target: target.Host + "/hostile", DryRun: true,
				Remote: remote.Options{PlainHTTP: true}, Stdin: stdin()})
			verdicts := fmt.Sprintf("verify %v, inspect %v, import --dry-run %v", rep.OK, inspectErr == nil, importErr == nil)
			if rep.OK != tc.ok || (inspectErr == nil) != tc.ok || (importErr == nil) != tc.ok {
				t.Fatalf("want all %v, got %s\nverify: %+v\ninspect: %v\nimport: %v", tc.ok, verdicts, rep.Problems, inspectErr, importErr)
			}
			if tc.ok {
				return
			}
			var msgs []string
			for _, p := range rep.Problems {
				msgs = append(msgs, p.Message)
			}
			for name, msg := range map[string]string{"verify": strings.Join(msgs, "\n"), "inspect": inspectErr.Error(), "import": importErr.Error()} {
				if !strings.Contains(msg, tc.error) {
					t.Errorf("%s says %q, want it to mention %q", name, msg, tc.error)
				}
			}
			for _, kind := range []string{"upload", "manifest"} {
				if n := target.Count("PUT", kind) + target.Count("POST", kind); n != 0 {
					t.Fatalf("the dry run wrote %d %s requests", n, kind)
				}
			}
		})
	}
}

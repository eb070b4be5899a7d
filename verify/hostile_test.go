package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/layout"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// rawEntry is one tar header with its content, for archives no writer of
// ours would produce.
type rawEntry struct {
	hdr  tar.Header
	data []byte
}

func reg(name string, data []byte) rawEntry {
	return rawEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644}, data: data}
}

func special(typ byte, name, link string) rawEntry {
	return rawEntry{hdr: tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o644, Devmajor: 1, Devminor: 3}}
}

func rawTar(t testing.TB, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, c layout.Compression, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case layout.Gzip:
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	case layout.Zstd:
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = zw.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		return data
	}
	return buf.Bytes()
}

// validMeta is a small complete layout to embed hostile entries in.
func validMeta(t testing.TB) []rawEntry {
	layer := []byte("layer")
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.DescriptorEmptyJSON,
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: 5}}}
	m.SchemaVersion = 2
	f := newFixture(t)
	md := f.json(ocispec.MediaTypeImageManifest, m)
	f.tag(md, "src.example/a:1")
	idx := f.entries(false)
	return []rawEntry{
		reg(layout.LayoutFile, layout.LayoutBytes()),
		reg(layout.IndexFile, idx[1].data),
		reg(layout.BlobPath(md.Digest), idx[2].data),
		reg(layout.BlobPath(ocispec.DescriptorEmptyJSON.Digest), ocispec.DescriptorEmptyJSON.Data),
		reg(layout.BlobPath(digest.FromBytes(layer)), layer),
	}
}

// hugeHeader is a tar header claiming size bytes followed by only a few.
func hugeHeader(t testing.TB, name string, size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	// WriteHeader has written the header block; the content never comes.
	return append(buf.Bytes(), []byte("tiny")...)
}

func TestBundleReportsHostileAndDamagedArchives(t *testing.T) {
	outside := t.TempDir()
	canary := filepath.Join(outside, "canary")
	if err := os.WriteFile(canary, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(canary)
	if err != nil {
		t.Fatal(err)
	}
	good := rawTar(t, validMeta(t)...)
	goodZstd := newStandardArchive(t, layout.Zstd)
	goodGzip := newStandardArchive(t, layout.Gzip)
	bigManifest := bigManifestArchive(t)
	with := func(extra ...rawEntry) []byte { return rawTar(t, append(validMeta(t), extra...)...) }

	tests := []struct {
		name string
		data []byte
		want string // in some error problem
	}{
		{"absolute path", with(reg(canary, []byte("pwned"))), "absolute path"},
		{"dot dot path", with(reg("blobs/../../"+filepath.Base(outside)+"/canary", []byte("pwned"))), `".."`},
		{"symlink", with(special(tar.TypeSymlink, "blobs/sha256/"+strings.Repeat("a", 64), canary)), "symbolic link"},
		{"hard link", with(special(tar.TypeLink, "blobs/sha256/"+strings.Repeat("a", 64), canary)), "hard link"},
		{"character device", with(special(tar.TypeChar, "blobs/sha256/"+strings.Repeat("b", 64), "")), "device"},
		{"fifo", with(special(tar.TypeFifo, "blobs/sha256/"+strings.Repeat("c", 64), "")), "FIFO"},
		{"name outside the layout", with(reg("etc/passwd", []byte("x"))), "unsafe entry"},
		{"duplicate entry", with(reg(layout.IndexFile, []byte(`{"schemaVersion":2}`))), "appears twice"},
		{"blob not matching its name", rawTar(t, append(validMeta(t)[:4], reg(layout.BlobPath(digest.FromString("layer")), []byte("LAYER")))...), "does not hash to its name"},
		{"entry size disagreeing with its descriptor", rawTar(t, append(validMeta(t)[:4], reg(layout.BlobPath(digest.FromString("layer")), []byte("layer!")))...), "declares"},
		{"manifest over 4 MiB", bigManifest, "larger than 4 MiB"},
		{"index.json over its limit", rawTar(t, reg(layout.LayoutFile, layout.LayoutBytes()), reg(layout.IndexFile, bytes.Repeat([]byte(" "), layout.MaxIndexSize+1))), "index.json is larger than"},
		{"index.json garbage", rawTar(t, reg(layout.LayoutFile, layout.LayoutBytes()), reg(layout.IndexFile, []byte("\x00garbage{"))), "index.json is not a valid image index"},
		{"index.json not an index", rawTar(t, reg(layout.LayoutFile, layout.LayoutBytes()), reg(layout.IndexFile, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`))), "want application/vnd.oci.image.index.v1+json"},
		{"oci-layout garbage", rawTar(t, append([]rawEntry{reg(layout.LayoutFile, []byte("nope"))}, validMeta(t)[1:]...)...), "oci-layout is not a valid layout file"},
		{"huge declared size with tiny data", hugeHeader(t, layout.BlobPath(digest.FromString("x")), 1<<40), "truncated"},
		{"truncated tar.zst", goodZstd[:len(goodZstd)*2/3], "offset"},
		{"truncated tar.gz", goodGzip[:len(goodGzip)*2/3], "offset"},
		{"truncated plain tar at an entry boundary", good[:1024], "end-of-archive"},
		{"corrupted tar.zst", corrupt(goodZstd), "damaged"},
		{"corrupted tar.gz", corrupt(goodGzip), "offset"},
		{"random bytes", randomBytes(42, 10000), "archive"},
		{"empty file", nil, "archive"},
		{"zstd wrapping a hostile tar", compress(t, layout.Zstd, with(reg(canary, nil))), "absolute path"},
		{"gzip wrapping a hostile tar", compress(t, layout.Gzip, with(special(tar.TypeSymlink, layout.IndexFile, "/etc/passwd"))), "symbolic link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "hostile.tar", tc.data, false)
			rep, err := Check(context.Background(), p, Options{})
			if err != nil {
				t.Fatalf("Bundle returned an error instead of a report: %v", err)
			}
			if rep.OK {
				t.Fatalf("report OK for a hostile archive:\n%s", dumpProblems(rep))
			}
			if len(problemsWith(rep, SeverityError, tc.want)) == 0 {
				t.Errorf("no error problem with %q in:\n%s", tc.want, dumpProblems(rep))
			}
		})
	}
	after, err := os.Stat(canary)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(canary)
	if err != nil || string(data) != "untouched" || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("canary changed: %q %v", data, err)
	}
	entries, err := os.ReadDir(outside)
	if err != nil || len(entries) != 1 {
		t.Fatalf("something was written next to the canary: %v %v", entries, err)
	}
}

func TestBundleTruncationNamesTheOffset(t *testing.T) {
	for _, c := range []layout.Compression{layout.Gzip, layout.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			data := newStandardArchive(t, c)
			cut := len(data) / 2
			p := writeFile(t, t.TempDir(), "cut"+extFor(c), data[:cut], false)
			rep, err := Check(context.Background(), p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			probs := problemsWith(rep, SeverityError, "truncated")
			if len(probs) == 0 {
				t.Fatalf("no truncation reported:\n%s", dumpProblems(rep))
			}
			if probs[0].Offset <= 0 || probs[0].Offset > int64(cut) {
				t.Errorf("offset %d, want within (0, %d]", probs[0].Offset, cut)
			}
		})
	}
}

func newStandardArchive(t testing.TB, c layout.Compression) []byte {
	f, _ := standardFixture(t)
	return f.archive(c, false)
}

// corrupt flips bytes in the middle of data.
func corrupt(data []byte) []byte {
	out := bytes.Clone(data)
	for i := len(out) / 2; i < len(out)/2+64 && i < len(out); i++ {
		out[i] ^= 0x5a
	}
	return out
}

// bigManifestArchive holds a manifest over 4 MiB (padded with
// whitespace, so it hashes to its name) that index.json points at.
func bigManifestArchive(t testing.TB) []byte {
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	m = append(m, bytes.Repeat([]byte(" "), 5<<20)...)
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m))}
	f := newFixture(t)
	f.tag(d, "src.example/big:1")
	f.put(m)
	return f.archive(layout.None, false)
}

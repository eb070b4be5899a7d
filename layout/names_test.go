package layout

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestBlobPathRoundTrips(t *testing.T) {
	for _, d := range []digest.Digest{
		digest.FromString("a"),
		digest.SHA512.FromString("a"),
	} {
		p := BlobPath(d)
		got, err := ParseBlobPath(p)
		if err != nil || got != d {
			t.Errorf("ParseBlobPath(BlobPath(%s)) = %s, %v", d, got, err)
		}
		if err := CheckName(p); err != nil {
			t.Errorf("CheckName(%s) = %v", p, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	hex := digest.FromString("a").Encoded()
	tests := []struct {
		name string
		ok   bool
	}{
		{LayoutFile, true},
		{IndexFile, true},
		{"blobs/sha256/" + hex, true},
		{"", false},
		{"/index.json", false},
		{"./index.json", false}, // readers strip "./" before checking
		{"index.json/", false},
		{"blobs/sha256/" + hex + "/", false},
		{"blobs/sha256/../" + hex, false},
		{"blobs/../index.json", false},
		{`blobs\sha256\` + hex, false},
		{"blobs/sha256/" + hex[:63], false},
		{"blobs/sha256/" + hex + "0", false},
		{"blobs/SHA256/" + hex, false},
		{"blobs/sha256//" + hex, false},
		{"blobs/sha256/" + hex + "/x", false},
		{"blobs/sha256", false},
		{"blobs/foo/" + hex, false},
		{"oci-layout.tmp", false},
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafeEntry) {
			t.Errorf("CheckName(%q) = %v, does not wrap ErrUnsafeEntry", tt.name, err)
		}
	}
}

func TestCompressionFromName(t *testing.T) {
	known := map[string]Compression{
		"b.tar": None, "b.tar.gz": Gzip, "B.TGZ": Gzip, "b.tar.zst": Zstd, "b.tzst": Zstd, "b.gz.tar": None,
	}
	for name, want := range known {
		if got, ok := CompressionFromName(name); got != want || !ok {
			t.Errorf("CompressionFromName(%q) = %s %v, want %s", name, got, ok, want)
		}
	}
	for _, name := range []string{"b", "b.zst", "x.tar.xz", "x.tar.zstd", "dir/b.tar.zst.partial"} {
		if _, ok := CompressionFromName(name); ok {
			t.Errorf("CompressionFromName(%q) says it knows", name)
		}
	}
}

func TestCompressionForRefusesWhatItCannotTell(t *testing.T) {
	tests := []struct {
		name  string
		asked Compression
		want  Compression
		err   string
	}{
		{"b.tar.zst", "", Zstd, ""},
		{"b.tar.gz", Gzip, Gzip, ""},
		{"b.bin", Zstd, Zstd, ""},
		{"x.tar.xz", "", "", "does not say the compression"},
		{"x", "", "", "does not say the compression"},
		{"y.tar.gz", Zstd, "", "names a gzip archive but --compress says zstd"},
	}
	for _, tt := range tests {
		got, err := CompressionFor(tt.name, tt.asked)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) || got != tt.want {
			t.Errorf("CompressionFor(%q, %q) = %q, %v; want %q, %q", tt.name, tt.asked, got, err, tt.want, tt.err)
		}
	}
}

func TestParseCompression(t *testing.T) {
	for _, s := range []string{"zstd", "gzip", "none"} {
		if c, err := ParseCompression(s); err != nil || string(c) != s {
			t.Errorf("ParseCompression(%q) = %s, %v", s, c, err)
		}
	}
	for _, s := range []string{"", "zst", "xz", "ZSTD"} {
		if _, err := ParseCompression(s); err == nil {
			t.Errorf("ParseCompression(%q) accepted it", s)
		}
	}
}

func TestDetectCompression(t *testing.T) {
	tests := []struct {
		prefix []byte
		want   Compression
	}{
		{[]byte{0x1f, 0x8b, 8, 0}, Gzip},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, Zstd},
		{[]byte{0x5e, 0x2a, 0x4d, 0x18}, Zstd}, // a skippable frame first
		{[]byte("oci-layout"), None},
		{nil, None},
		{[]byte{0x28, 0xb5}, None},
	}
	for _, tt := range tests {
		if got := DetectCompression(tt.prefix); got != tt.want {
			t.Errorf("DetectCompression(% x) = %s, want %s", tt.prefix, got, tt.want)
		}
	}
}

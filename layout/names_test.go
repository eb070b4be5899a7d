package layout

import (
	"errors"
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
	tests := map[string]Compression{
		"b.tar": None, "b": None, "b.tar.gz": Gzip, "B.TGZ": Gzip, "b.tar.zst": Zstd,
		"b.tzst": Zstd, "b.zst": Zstd, "dir/b.tar.zst.partial": None, "b.gz.tar": None,
	}
	for name, want := range tests {
		if got := CompressionFromName(name); got != want {
			t.Errorf("CompressionFromName(%q) = %s, want %s", name, got, want)
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

package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepositoryPath(t *testing.T) {
	for ref, want := range map[string]string{
		"reg.example:5000/team/app:1.0":          "team/app",
		"reg.example/team/app@sha256:" + hex64:   "team/app",
		"reg.example/team/app:1@sha256:" + hex64: "team/app",
		"docker.io/library/busybox:latest":       "library/busybox",
		"127.0.0.1:5000/a/b/c":                   "a/b/c",
		"noslash":                                "",
	} {
		if got := RepositoryPath(ref); got != want {
			t.Errorf("RepositoryPath(%q) = %q, want %q", ref, got, want)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestReceiptRoundTripsAndParsesStrictly(t *testing.T) {
	r := &Receipt{SchemaVersion: ReceiptVersion, Kind: ReceiptKind, Bundle: "sha256:" + hex64,
		Images: []ReceiptImage{{Reference: "reg/team/app:1", Digest: "sha256:" + hex64}}, Manifests: []string{"sha256:" + hex64},
		Blobs: []string{"sha256:" + hex64}, Repositories: map[string][]string{"team/app": {"sha256:" + hex64}}}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteReceipt(path, r); err != nil {
		t.Fatal(err)
	}
	got, err := LoadBase(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if held := got.Held(); len(held) != 1 || !held["sha256:"+hex64]["team/app"] {
		t.Errorf("held %v", held)
	}
	data, _ := os.ReadFile(path)
	for name, tc := range map[string]struct{ from, to, want string }{
		"unknown field": {`"kind"`, `"kinds": "x", "kind"`, "unknown field"},
		"other kind":    {`"bundle-receipt"`, `"something"`, "kind"},
		"bad digest":    {`"blobs": [` + "\n" + `    "sha256:` + hex64, `"blobs": [` + "\n" + `    "sha256:zz`, "sha256:zz"},
	} {
		t.Run(name, func(t *testing.T) {
			bad := strings.Replace(string(data), tc.from, tc.to, 1)
			if bad == string(data) {
				t.Fatalf("the edit %q did not apply", tc.from)
			}
			if _, err := ParseReceipt("r.json", []byte(bad)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

package serve

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/pack"
)

// TestServeReadsABundleInParts serves a bundle exported in parts with
// parity, from its first part, one part lost: the same manifest and blob
// bytes as from the whole file.
func TestServeReadsABundleInParts(t *testing.T) {
	f := newFixture(t, ".tar.zst")
	dir := t.TempDir()
	out := filepath.Join(dir, "split.tar.zst")
	refs := []string{f.src.Ref("team/multi", "2.0"), f.src.Ref("team/signed", "1.0"), f.src.Ref("team/big", "1")}
	if _, err := pack.Export(t.Context(), refs, pack.Options{Output: out, SplitSize: 3 << 20, Parity: 1,
		CacheDir: filepath.Join(dir, "cache"), Remote: remote.Options{PlainHTTP: true}}); err != nil {
		t.Fatal(err)
	}
	removePart(t, out+".001")
	whole, _ := serveFiles(t, Options{Files: []string{f.file}})
	parts, _ := serveFiles(t, Options{Files: []string{out + ".000"}})
	for _, path := range []string{
		"/v2/team/multi/manifests/2.0",
		"/v2/team/big/blobs/" + f.big.Layers[0].Digest.String(),
		"/v2/team/multi/referrers/" + f.index.Desc.Digest.String(),
	} {
		h := http.Header{"Accept": {"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"}}
		r1, b1 := do(t, http.MethodGet, whole+path, h)
		r2, b2 := do(t, http.MethodGet, parts+path, h)
		if r1.StatusCode != http.StatusOK || r2.StatusCode != http.StatusOK || string(b1) != string(b2) {
			t.Errorf("%s: whole %d (%d bytes), parts %d (%d bytes)", path, r1.StatusCode, len(b1), r2.StatusCode, len(b2))
		}
	}
}

func removePart(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}

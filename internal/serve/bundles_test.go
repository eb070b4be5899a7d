package serve

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/pack"
)

// damage flips one byte in the middle of blob d inside the plain tar file.
func damage(t *testing.T, file string, d digest.Digest) {
	t.Helper()
	fh, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	a, err := layout.OpenArchive(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	e, ok := a.Entry(layout.BlobPath(d))
	if !ok {
		t.Fatalf("%s not in %s", d, file)
	}
	at := e.Offset + e.Size/2
	var b [1]byte
	if _, err := fh.ReadAt(b[:], at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := fh.WriteAt(b[:], at); err != nil {
		t.Fatal(err)
	}
}

func TestServeNeverSendsDamagedBlob(t *testing.T) {
	f := newFixture(t, ".tar")
	small, big := f.index.Children[0].Layers[0], f.big.Layers[0]
	damage(t, f.file, small.Digest)
	damage(t, f.file, big.Digest)
	base, logs := serveFiles(t, Options{Files: []string{f.file}})

	t.Run("small blob: an error answer", func(t *testing.T) {
		resp, body := do(t, "GET", base+"/v2/team/multi/blobs/"+small.Digest.String(), nil)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("GET damaged small blob = %d, want 500", resp.StatusCode)
		}
		wantCode("UNKNOWN")(t, resp, body)
	})
	for _, rng := range []string{"", "bytes=0-99"} {
		t.Run("large blob: the connection aborted "+rng, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v2/team/big/blobs/"+big.Digest.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rng != "" {
				req.Header.Set("Range", rng)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // refused before the headers: fine as well
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil {
				t.Fatalf("read %d bytes of the damaged blob without an error, want the body cut short", n)
			}
			if n >= resp.ContentLength {
				t.Errorf("got %d of %d bytes: the whole body was sent", n, resp.ContentLength)
			}
		})
	}
	// The log is written before the handler returns; Shutdown (in
	// Cleanup) is not needed to read it, but the request must be done.
	for _, d := range []digest.Digest{small.Digest, big.Digest} {
		if !strings.Contains(logs.String(), d.String()) {
			t.Errorf("log does not name damaged blob %s:\n%s", d, logs.String())
		}
	}
}

func TestServeSeveralBundles(t *testing.T) {
	src := testregistry.NewDistribution(t)
	dir := t.TempDir()
	export := func(name string, refs ...string) string {
		out := filepath.Join(dir, name)
		if _, err := pack.Export(t.Context(), refs, pack.Options{Output: out, CacheDir: filepath.Join(dir, "cache"), Remote: remote.Options{PlainHTTP: true}}); err != nil {
			t.Fatalf("export %v: %v", refs, err)
		}
		return out
	}
	a1 := src.PushImage(t, "team/a", "1", testregistry.ImageSpec{Seed: 1})
	b1 := src.PushImage(t, "team/b", "1", testregistry.ImageSpec{Seed: 2})
	fileA := export("a.tar.zst", src.Ref("team/a", "1"))
	fileB := export("b.tar", src.Ref("team/b", "1"), src.Ref("team/a", "1"))
	src.PushImage(t, "team/a", "1", testregistry.ImageSpec{Seed: 3}) // the tag moves
	fileC := export("c.tar", src.Ref("team/a", "1"))

	t.Run("union", func(t *testing.T) {
		base, _ := serveFiles(t, Options{Files: []string{fileA, fileB}, Prefix: "site"})
		for ref, want := range map[string]digest.Digest{"site/team/a/manifests/1": a1.Desc.Digest, "site/team/b/manifests/1": b1.Desc.Digest} {
			resp, body := do(t, "GET", base+"/v2/"+ref, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d %s", ref, resp.StatusCode, body)
			}
			wantDigest(t, body, want)
		}
	})
	t.Run("conflict refused naming both", func(t *testing.T) {
		s, err := Start(t.Context(), Options{Files: []string{fileA, fileC}, Addr: "127.0.0.1:0"})
		if err == nil {
			s.Shutdown(t.Context())
			t.Fatal("started with team/a:1 at two digests")
		}
		for _, want := range []string{"team/a:1", fileA, fileC} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	})
	t.Run("stream refused", func(t *testing.T) {
		gz := export("a.tar.gz", src.Ref("team/b", "1"))
		s, err := Start(t.Context(), Options{Files: []string{gz}, Addr: "127.0.0.1:0"})
		if err == nil {
			s.Shutdown(t.Context())
			t.Fatal("started on a gzip bundle")
		}
		if !strings.Contains(err.Error(), ".tar.zst") {
			t.Errorf("error %q does not say to export as .tar.zst", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Start(t.Context(), Options{Files: []string{filepath.Join(dir, "none.tar")}, Addr: "127.0.0.1:0"})
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %v, want one wrapping ErrNotExist", err)
		}
	})
}

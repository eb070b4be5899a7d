package serve

import (
	"bytes"
	"errors"
	"fmt"
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

func TestServeRangesMatchTheBlob(t *testing.T) {
	for _, ext := range []string{".tar", ".tar.zst"} {
		t.Run(ext, func(t *testing.T) {
			f := newFixture(t, ext)
			base, _ := serveFiles(t, Options{Files: []string{f.file}})
			big := f.big.Layers[0]
			url := base + "/v2/team/big/blobs/" + big.Digest.String()
			_, whole := do(t, "GET", url, nil)
			wantDigest(t, whole, big.Digest)
			// The second read of a zstd blob is the unchecked one, and
			// ranges seek in it.
			_, again := do(t, "GET", url, nil)
			wantDigest(t, again, big.Digest)
			n := int64(len(whole))
			for _, r := range []struct{ start, end int64 }{{0, 0}, {0, n - 1}, {1, chunk + 1}, {n / 2, n/2 + 3*chunk}, {n - 1, n - 1}, {4<<20 - 5, 4<<20 + 5}} {
				if r.end >= n {
					r.end = n - 1
				}
				spec := fmt.Sprintf("bytes=%d-%d", r.start, r.end)
				resp, body := do(t, "GET", url, http.Header{"Range": {spec}})
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, whole[r.start:r.end+1]) {
					first := -1
					for i := range min(len(body), int(r.end-r.start+1)) {
						if body[i] != whole[r.start+int64(i)] {
							first = i
							break
						}
					}
					t.Errorf("%s: %d with %d bytes, want 206 with bytes %d to %d of the blob (first difference at %d: %x vs %x)", spec, resp.StatusCode, len(body), r.start, r.end, first, body[:min(8, len(body))], whole[r.start:min(r.start+8, n)])
				}
			}
		})
	}
}

// TestServeDetectsDamageAfterVerifying damages a zstd bundle under a
// running server after it served a blob whole: the next read, which skips
// the hash, must still fail on the frame checksum.
func TestServeDetectsDamageAfterVerifying(t *testing.T) {
	f := newFixture(t, ".tar.zst")
	base, logs := serveFiles(t, Options{Files: []string{f.file}})
	big := f.big.Layers[0]
	url := base + "/v2/team/big/blobs/" + big.Digest.String()
	_, whole := do(t, "GET", url, nil)
	wantDigest(t, whole, big.Digest)

	fh, err := os.OpenFile(f.file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// The large layer is most of the file: its middle is in the layer.
	var b [1]byte
	at := fi.Size() / 2
	if _, err := fh.ReadAt(b[:], at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := fh.WriteAt(b[:], at); err != nil {
		t.Fatal(err)
	}
	fh.Close()

	resp, err := http.Get(url)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err == nil && bytes.Equal(got, whole) {
		t.Fatal("served the blob whole again although the archive changed under it")
	}
	if err == nil {
		t.Fatalf("read %d bytes of a damaged blob without an error", len(got))
	}
	if !strings.Contains(logs.String(), big.Digest.String()) {
		t.Errorf("log does not name %s:\n%s", big.Digest, logs.String())
	}
}

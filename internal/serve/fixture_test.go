package serve

import (
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/pack"
)

const (
	typeSBOM = "application/spdx+json"
	typeSig  = "application/vnd.dev.cosign.artifact.sig.v1+json"
)

// fixture is a source registry holding a multi-platform index with nested
// referrers, a cosign-signed image and an image with a layer larger than
// smallBlob, exported into one bundle.
type fixture struct {
	src     *testregistry.Registry
	file    string
	index   testregistry.Index
	sbom    ocispec.Descriptor // on the index
	sig     ocispec.Descriptor // on the SBOM
	onChild ocispec.Descriptor // on the arm64 manifest
	signed  testregistry.Image
	cosign  ocispec.Descriptor // team/signed's .sig tag
	big     testregistry.Image
}

func newFixture(t *testing.T, ext string) *fixture {
	t.Helper()
	r := testregistry.NewReferrersAPI(t)
	f := &fixture{src: r}
	f.index = r.PushIndex(t, "team/multi", "2.0", []string{"linux/amd64", "linux/arm64"}, testregistry.ImageSpec{Seed: 1, Gzip: true}, false)
	f.sbom = r.PushReferrer(t, "team/multi", f.index.Desc, typeSBOM, map[string]string{"n": "sbom"})
	f.sig = r.PushReferrer(t, "team/multi", f.sbom, typeSig, map[string]string{"n": "sig"})
	f.onChild = r.PushReferrer(t, "team/multi", f.index.Children[1].Desc, typeSBOM, map[string]string{"n": "arm64"})
	f.signed = r.PushImage(t, "team/signed", "1.0", testregistry.ImageSpec{Seed: 2})
	f.cosign = r.PushCosign(t, "team/signed", f.signed.Desc, "sig")
	f.big = r.PushImage(t, "team/big", "1", testregistry.ImageSpec{Seed: 3, Layers: 1, LayerSize: 9<<20 + 17})
	dir := t.TempDir()
	f.file = filepath.Join(dir, "bundle"+ext)
	refs := []string{r.Ref("team/multi", "2.0"), r.Ref("team/signed", "1.0"), r.Ref("team/big", "1")}
	if _, err := pack.Export(t.Context(), refs, pack.Options{Output: f.file, CacheDir: filepath.Join(dir, "cache"), Remote: remote.Options{PlainHTTP: true}}); err != nil {
		t.Fatalf("export %v: %v", refs, err)
	}
	return f
}

// logBuffer is a log destination the test reads once the server is done.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveFiles starts a registry over files and returns its base URL and log.
func serveFiles(t *testing.T, opts Options) (string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	opts.Log = slog.New(slog.NewTextHandler(logs, nil))
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return "http://" + s.Addr(), logs
}

// do sends one request and returns the answer with its body read.
func do(t *testing.T, method, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, body
}

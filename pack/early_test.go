package pack

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/plugins/content/local"
	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/verify"
)

// gate is a proxy in front of a registry that holds every request for one
// manifest until the blobs it waits for have been asked for: the plan of
// an export through it can only finish if those blobs are fetched while
// the plan is being made.
type gate struct {
	held string // path suffix: /manifests/<digest>

	mu      sync.Mutex
	waitFor map[string]bool // blob digests still to be asked for; empty: any
	opened  chan struct{}
	gaveUp  bool
}

func newGate(t *testing.T, r *testregistry.Registry, held string, waitFor ...digest.Digest) (*gate, string) {
	t.Helper()
	g := &gate{held: held, waitFor: map[string]bool{}, opened: make(chan struct{})}
	for _, d := range waitFor {
		g.waitFor[d.String()] = true
	}
	target, _ := url.Parse("http://" + r.Host)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/"):
			g.saw(req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:])
		case strings.HasSuffix(req.URL.Path, g.held):
			select {
			case <-g.opened:
			case <-time.After(20 * time.Second):
				// A bound on a failure, not a synchronisation: the
				// export never fetched the blobs while this waited.
				g.mu.Lock()
				g.gaveUp = true
				g.mu.Unlock()
			case <-req.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return g, strings.TrimPrefix(srv.URL, "http://")
}

func (g *gate) saw(d string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.waitFor, d)
	if len(g.waitFor) == 0 {
		select {
		case <-g.opened:
		default:
			close(g.opened)
		}
	}
}

func (g *gate) timedOut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gaveUp
}

func TestExportFetchesBlobsWhilePlanning(t *testing.T) {
	r := testregistry.NewDistribution(t)
	var refs []string
	var imgs []testregistry.Image
	for i := range 4 {
		img := r.PushImage(t, "early", fmt.Sprint(i), testregistry.ImageSpec{Seed: int64(40 + i), Layers: 2, LayerSize: 4 << 10})
		r.PushReferrer(t, "early", img.Desc, "application/spdx+json", nil)
		imgs = append(imgs, img)
	}
	// The last image's manifest waits for the layers of the first: configs
	// are read by the plan itself.
	var layers []digest.Digest
	for _, l := range imgs[0].Layers {
		layers = append(layers, l.Digest)
	}
	g, host := newGate(t, r, "/manifests/"+imgs[3].Desc.Digest.String(), layers...)
	for i := range imgs {
		refs = append(refs, fmt.Sprintf("%s/early:%d", host, i))
	}
	opts := testOptions(t, "early.tar.zst")
	opts.Concurrency = 2
	rep, err := Export(context.Background(), refs, opts)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if g.timedOut() {
		t.Fatal("no blob was fetched while the plan waited on a manifest: planning does not stream")
	}
	if rep.FirstWrite <= 0 || rep.FirstWrite >= rep.Planning {
		t.Errorf("first blob on disk after %v, planning took %v: want the first blob before the plan is done", rep.FirstWrite, rep.Planning)
	}
	a := readArchive(t, opts.Output)
	for _, img := range imgs {
		wantBlobs(t, a, imageDescs(img)...)
	}
	res, err := verify.Check(context.Background(), opts.Output, verify.Options{})
	if err != nil || !res.OK {
		t.Fatalf("verify of an export with early blobs: %v %+v", err, res.Problems)
	}
	// Nothing of the spool is left beside the output.
	entries, err := os.ReadDir(strings.TrimSuffix(opts.Output, "/early.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".bundle-spool") {
			t.Errorf("spool file %s left beside the output", e.Name())
		}
	}
}

// A failed export keeps what came early in the cache, as it keeps the
// archive's blobs: a rerun does not fetch them again.
func TestFailedExportKeepsEarlyBlobs(t *testing.T) {
	r := testregistry.NewDistribution(t)
	first := r.PushImage(t, "kept", "1", testregistry.ImageSpec{Seed: 50, Layers: 3, LayerSize: 2 << 10})
	second := r.PushImage(t, "kept", "2", testregistry.ImageSpec{Seed: 51, Layers: 1, LayerSize: 2 << 10})
	var layers []digest.Digest
	for _, l := range first.Layers {
		layers = append(layers, l.Digest)
	}
	g, host := newGate(t, r, "/manifests/"+second.Desc.Digest.String(), layers...)
	opts := testOptions(t, "kept.tar")
	opts.Concurrency = 2
	// The export fails at its first write to the archive, after the plan.
	if err := os.Mkdir(opts.Output+".partial", 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Export(context.Background(), []string{host + "/kept:1", host + "/kept:2"}, opts)
	if err == nil {
		t.Fatal("Export succeeded though its partial file is a directory")
	}
	if g.timedOut() {
		t.Fatal("the first image's layers were not fetched while the plan waited")
	}
	store, err := local.NewStore(opts.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range first.Layers {
		if _, err := store.Info(context.Background(), l.Digest); err != nil {
			t.Errorf("layer %s fetched early is not in the cache after the failed export: %v", l.Digest, err)
		}
	}
}

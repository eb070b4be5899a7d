package testregistry

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // registers the inmemory driver
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	digest "github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
)

// seedHeader marks the requests the seeding helpers make, so that Count
// reports only what the code under test asked for.
const seedHeader = "X-Bundle-Testregistry-Seed"

// Registry is a registry reachable on 127.0.0.1 over real HTTP.
type Registry struct {
	Host string // "127.0.0.1:PORT"

	scheme         string
	client         *http.Client // for the seeding helpers
	user, password string       // basic auth of the seeding helpers
	referrer       bool         // serves GET /v2/<name>/referrers/<digest>

	counts *counter
	// seed is where the seeding helpers go: the registry itself, or the
	// upstream of a proxy so that faults never hit the seeding.
	seed  *Registry
	proxy *proxy // the faults, when this is a proxy

	fallbackMu sync.Mutex               // serialises fallback tag merges (read, merge, write)
	mu         sync.Mutex               // guards the maps below
	blobRepo   map[digest.Digest]string // a repository each seeded blob is in, for mounts
	diffIDs    map[digest.Digest]digest.Digest
	schema1    map[string]served // "repo/ref" -> manifest the wrapper serves
	noSchema1  bool              // the server refuses schema 1 and nothing can serve it
}

type served struct {
	mediaType string
	data      []byte
}

var quietLogrus sync.Once

// NewDistribution starts distribution v3 in process with in-memory storage
// and deletes enabled. It has no referrers API.
func NewDistribution(t testing.TB) *Registry {
	t.Helper()
	// distribution logs every request, and every 404 as an error, through
	// logrus's standard logger and offers no per-app logger outside its
	// internal packages. Tests see failures through the HTTP answers.
	quietLogrus.Do(func() { logrus.SetLevel(logrus.PanicLevel) })

	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory": configuration.Parameters{},
			"delete":   configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{
				"enabled": false,
			}},
		},
	}
	cfg.Log.Level = "error"
	cfg.Log.AccessLog.Disabled = true
	cfg.HTTP.Secret = "bundle-testregistry"
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	r := newRegistry(false)
	r.start(t, app)
	t.Cleanup(func() {
		_ = app.Shutdown()
		cancel()
	})
	return r
}

// NewReferrersAPI starts go-containerregistry's registry with the referrers
// API, wrapped so that it behaves as real registries with the API do.
func NewReferrersAPI(t testing.TB) *Registry {
	t.Helper()
	h := ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))
	r := newRegistry(true)
	r.start(t, fixReferrers(h))
	return r
}

func newRegistry(referrers bool) *Registry {
	r := &Registry{}
	r.init(referrers)
	return r
}

func (r *Registry) init(referrers bool) {
	r.scheme = "http"
	r.client = &http.Client{}
	r.referrer = referrers
	r.counts = newCounter()
	r.blobRepo = map[digest.Digest]string{}
	r.diffIDs = map[digest.Digest]digest.Digest{}
	r.schema1 = map[string]served{}
	r.seed = r
}

func (r *Registry) start(t testing.TB, h http.Handler) {
	srv := httptest.NewServer(r.counts.wrap(r.serveSchema1(h)))
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
}

// HasReferrersAPI reports whether the registry answers the referrers API.
func (r *Registry) HasReferrersAPI() bool { return r.referrer }

// Ref is a reference to repo at a tag or digest on this registry.
func (r *Registry) Ref(repo, tagOrDigest string) string {
	if _, err := digest.Parse(tagOrDigest); err == nil {
		return r.Host + "/" + repo + "@" + tagOrDigest
	}
	return r.Host + "/" + repo + ":" + tagOrDigest
}

// Count is the number of requests of method (any when "") and kind served
// since the start or the last ResetCounts. Kinds: "blob", "upload",
// "manifest", "referrers", "tags", "base" (/v2/), "other". Requests made by
// the seeding helpers are not counted.
func (r *Registry) Count(method, kind string) int { return r.counts.get(method, kind) }

// CountAll is the number of requests served since the start or the last
// ResetCounts, as Count counts them.
func (r *Registry) CountAll() int { return r.counts.getPath("", "") }

// CountPath is the number of requests of method (any when "") whose path
// contains sub, as Count counts them.
func (r *Registry) CountPath(method, sub string) int { return r.counts.getPath(method, sub) }

// ResetCounts sets every count to zero.
func (r *Registry) ResetCounts() { r.counts.reset() }

func (r *Registry) baseURL() string { return r.scheme + "://" + r.Host }

// counter counts requests by method and kind, and by method and path.
type counter struct {
	mu    sync.Mutex
	n     map[[2]string]int
	paths map[[2]string]int
}

func newCounter() *counter { return &counter{n: map[[2]string]int{}, paths: map[[2]string]int{}} }

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get(seedHeader) == "" {
			c.mu.Lock()
			c.n[[2]string{req.Method, kindOf(req.URL.Path)}]++
			c.paths[[2]string{req.Method, req.URL.Path}]++
			c.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	})
}

func (c *counter) getPath(method, sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for k, n := range c.paths {
		if (method == "" || strings.EqualFold(k[0], method)) && strings.Contains(k[1], sub) {
			total += n
		}
	}
	return total
}

func (c *counter) get(method, kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for k, n := range c.n {
		if (method == "" || strings.EqualFold(k[0], method)) && k[1] == kind {
			total += n
		}
	}
	return total
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.n)
	clear(c.paths)
}

// kindOf classifies a registry API path.
func kindOf(path string) string {
	if path == "/v2/" || path == "/v2" {
		return "base"
	}
	switch {
	case strings.Contains(path, "/blobs/uploads"):
		return "upload"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	case strings.Contains(path, "/manifests/"):
		return "manifest"
	case strings.Contains(path, "/referrers/"):
		return "referrers"
	case strings.HasSuffix(path, "/tags/list"):
		return "tags"
	}
	return "other"
}

// parsePath splits /v2/<name>/<kind>/<ref> into name and ref.
func parsePath(path, kind string) (name, ref string, ok bool) {
	rest, found := strings.CutPrefix(path, "/v2/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/"+kind+"/")
	if i <= 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len(kind)+2:], true
}

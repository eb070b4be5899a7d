package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bundle-dev/bundle/internal/testregistry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// quick is a policy for tests that meet failures on purpose: short waits,
// a budget of 4 attempts, and a stall timeout short enough for the tests
// that stall, long enough that a registry in this process, on a machine
// loaded with -race and other work, does not look stalled.
var quick = Options{PlainHTTP: true, MaxRetries: 3, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, MaxRetryAfter: time.Millisecond, StallTimeout: 300 * time.Millisecond}

// scripted serves the nth request with steps[n], the last step for all
// after, and counts them. Its requests' contexts end with the test too, so
// that a step holding an answer until the client goes cannot outlive it
// (a client may keep a connection whose answer it has).
type scripted struct {
	mu    sync.Mutex
	n     int
	steps []http.HandlerFunc
	ctx   context.Context
}

func serve(t *testing.T, steps ...http.HandlerFunc) (*scripted, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &scripted{steps: steps, ctx: ctx}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(cancel) // runs first
	return s, strings.TrimPrefix(srv.URL, "http://")
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	step := s.steps[min(s.n, len(s.steps)-1)]
	s.n++
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	step(w, r.WithContext(ctx))
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

var manifestBody = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)

// wholeManifest answers the manifest.
func wholeManifest(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
	w.Header().Set("Content-Length", fmt.Sprint(len(manifestBody)))
	_, _ = w.Write(manifestBody)
}

// half announces the manifest, sends half of it, then hold runs.
func half(hold func(*http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		w.Header().Set("Content-Length", fmt.Sprint(len(manifestBody)))
		_, _ = w.Write(manifestBody[:len(manifestBody)/2])
		_ = http.NewResponseController(w).Flush()
		hold(r)
	}
}

// hang holds until the client has gone: a stall.
func hang(r *http.Request) { <-r.Context().Done() }

// die drops the connection.
func die(*http.Request) { panic(http.ErrAbortHandler) }

// A document whose body breaks or stalls, or whose headers never come, is
// fetched again inside the transport: the caller sees it whole.
func TestDocumentsAreReadWholeAndRetried(t *testing.T) {
	cases := []struct {
		name  string
		first http.HandlerFunc
	}{
		{"body cut short", half(die)},
		{"body stalls", half(hang)},
		{"headers never come", func(_ http.ResponseWriter, r *http.Request) { hang(r) }},
		{"429 with Retry-After", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s, host := serve(t, c.first, wholeManifest)
			_, client := quick.Connect(ctx)
			data, mt, err := client.Manifest(ctx, host+"/app", "v1", ocispec.MediaTypeImageManifest)
			if err != nil || string(data) != string(manifestBody) || mt != ocispec.MediaTypeImageManifest {
				t.Fatalf("Manifest = %q %q %v, want the manifest", data, mt, err)
			}
			if n := s.count(); n != 2 {
				t.Fatalf("%d requests, want 2", n)
			}
			// containerd's resolver goes through the same transport.
			s.mu.Lock()
			s.n = 0
			s.mu.Unlock()
			_, desc, err := quick.Resolver(ctx).Resolve(ctx, host+"/app:v1")
			if err != nil || desc.Digest != digest.FromBytes(manifestBody) {
				t.Fatalf("Resolve = %v %v", desc.Digest, err)
			}
		})
	}
}

// A blob body that stalls is cut and handed back as a transient failure
// for the caller to resume; one that is slow to be read is not a stall.
func TestBlobStallsAreCutButSlowReadersAreNot(t *testing.T) {
	ctx := context.Background()
	blob := []byte(strings.Repeat("b", 4096))
	_, host := serve(t,
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			_, _ = w.Write(blob[:100])
			_ = http.NewResponseController(w).Flush()
			hang(r)
		},
		func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(blob) },
	)
	_, client := quick.Connect(ctx)
	get := func() *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/app/blobs/"+digest.FromBytes(blob).String(), nil)
		resp, err := client.send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get()
	start := time.Now()
	_, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var stall *StallError
	if !errors.As(err, &stall) || !Transient(err) || time.Since(start) < quick.StallTimeout {
		t.Fatalf("read of a stalled body: %v after %v, want a transient stall after %v", err, time.Since(start), quick.StallTimeout)
	}
	resp = get()
	defer resp.Body.Close()
	first := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * quick.StallTimeout) // the consumer is slow, not the link
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != len(blob)-1 {
		t.Fatalf("slow reader: %d bytes, %v", len(rest), err)
	}
}

// An upload whose PUT the registry stops reading is cut, and the upload
// starts again with a fresh POST.
func TestAStalledUploadStartsAgain(t *testing.T) {
	ctx := context.Background()
	blob := make([]byte, 16<<20)
	d := ocispec.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	post := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/v2/app/blobs/uploads/u?_state=secret")
		w.WriteHeader(http.StatusAccepted)
	}
	s, host := serve(t,
		post,
		func(_ http.ResponseWriter, r *http.Request) {
			_, _ = io.CopyN(io.Discard, r.Body, 64<<10)
			hang(r)
		},
		post,
		func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
		},
	)
	_, client := quick.Connect(ctx)
	opens := 0
	open := func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(strings.NewReader(string(blob))), nil
	}
	res, err := client.PushBlob(ctx, host+"/app", d, "", open, nil)
	if err != nil || res != Uploaded {
		t.Fatalf("PushBlob = %v %v", res, err)
	}
	if n := s.count(); n != 4 || opens != 2 {
		t.Fatalf("%d requests from %d opens, want POST, PUT, POST, PUT from 2", n, opens)
	}
}

// A persistent failure costs one budget, whoever retries: no loop inside
// another (containerd's resolver and fetcher have their own).
func TestAPersistentFailureCostsOneBudget(t *testing.T) {
	up := testregistry.NewDistribution(t)
	img := up.PushImage(t, "app", "v1", testregistry.ImageSpec{})
	budget := quick.MaxRetries + 1
	layer := img.Layers[0]
	cases := []struct {
		name       string
		path       string // where the 503s go
		method     string
		kind       string
		do         func(ctx context.Context, p *testregistry.Registry) error
		wantPrefix string
	}{
		{"resolve", "/manifests/", "HEAD", "manifest", func(ctx context.Context, p *testregistry.Registry) error {
			_, _, err := quick.Resolver(ctx).Resolve(ctx, p.Ref("app", "v1"))
			return err
		}, ""},
		{"fetch a blob", layer.Digest.String(), "GET", "blob", func(ctx context.Context, p *testregistry.Registry) error {
			f, err := quick.Resolver(ctx).Fetcher(ctx, p.Ref("app", "v1"))
			if err != nil {
				return err
			}
			rc, err := f.Fetch(ctx, layer)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(io.Discard, rc)
			return err
		}, ""},
		{"referrers API", "/referrers/", "GET", "referrers", func(ctx context.Context, p *testregistry.Registry) error {
			_, client := quick.Connect(ctx)
			_, _, err := client.Referrers(ctx, p.Host+"/app", img.Desc.Digest)
			return err
		}, ""},
		{"upload", "/blobs/uploads/", "POST", "upload", func(ctx context.Context, p *testregistry.Registry) error {
			_, client := quick.Connect(ctx)
			_, err := client.PushBlob(ctx, p.Host+"/other", layer, "", func() (io.ReadCloser, error) {
				return nil, errors.New("never opened")
			}, nil)
			return err
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testregistry.NewProxy(t, up, testregistry.Faults{Status: http.StatusServiceUnavailable, StatusTimes: 1000, StatusPath: c.path})
			err := c.do(context.Background(), p)
			var g *GaveUpError
			if !errors.As(err, &g) {
				t.Fatalf("err = %v, want a *GaveUpError", err)
			}
			if n := p.Count(c.method, c.kind); n != budget {
				t.Fatalf("%d %s %s requests for a persistent 503, want the budget, %d", n, c.method, c.kind, budget)
			}
			if explained := Explain(err, p.Ref("app", "v1")).Error(); !strings.Contains(explained, "503 Service Unavailable") || strings.Count(explained, "503 Service Unavailable") != 1 || !strings.Contains(explained, p.Host) {
				t.Fatalf("Explain = %q, want one mention of the 503 and the registry", explained)
			}
		})
	}
}

package testregistry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Faults are what a proxy does wrong on purpose.
type Faults struct {
	CorruptBlob digest.Digest // flip a byte in this blob's GET body
	ResetBlob   digest.Digest // cut the connection mid-body on the first ResetTimes GETs of this blob
	ResetTimes  int
	Status      int    // answer this status (e.g. 503, 429 with Retry-After: 0) ...
	StatusTimes int    // ... to the first StatusTimes requests, then pass through
	StatusPath  string // if set, only requests whose path contains it get Status
	BlobRate    int64  // if set, serve each blob GET body at this many bytes a second, like a WAN link

	// Mixed faults, the link of issue 11: each request, with probability
	// Rate, meets one of Kinds (all of them when empty), drawn from a
	// generator seeded with Seed. Under concurrency the order requests
	// arrive in varies, so a seed fixes the mix, not which request gets
	// which fault.
	Rate  float64
	Seed  uint64
	Kinds []FaultKind
	Stall time.Duration // how long FaultStall holds an answer; 2s when 0
}

// NewProxy puts a proxy with faults in front of upstream. The returned
// Registry's Host is the proxy and its counts are the proxy's; its seeding
// helpers go straight to upstream, untouched by the faults.
func NewProxy(t testing.TB, upstream *Registry, f Faults) *Registry {
	t.Helper()
	target, err := url.Parse(upstream.baseURL())
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{faults: f, resetsLeft: f.ResetTimes, statusLeft: f.StatusTimes, mixed: newMixer(f)}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Keep the client's Host so that upload locations the upstream
			// builds from it lead back through the proxy.
			pr.Out.Host = pr.In.Host
		},
		Transport:      upstream.client.Transport,
		ModifyResponse: p.modify,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	p.upstream = target
	p.transport = upstream.client.Transport
	if p.transport == nil {
		p.transport = http.DefaultTransport
	}
	r := &Registry{
		scheme:   "http",
		client:   &http.Client{},
		referrer: upstream.referrer,
		counts:   newCounter(),
		seed:     upstream.seed,
		proxy:    p,
	}
	srv := httptest.NewUnstartedServer(r.counts.wrap(p))
	// The faults that cut connections need the connection.
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// Injected is how many mixed faults of each kind a proxy has injected.
func (r *Registry) Injected() map[FaultKind]int {
	if r.proxy == nil || r.proxy.mixed == nil {
		return nil
	}
	return r.proxy.mixed.injected()
}

type proxy struct {
	faults    Faults
	rp        *httputil.ReverseProxy
	upstream  *url.URL
	transport http.RoundTripper
	mixed     *mixer // nil without Rate

	mu         sync.Mutex
	resetsLeft int
	statusLeft int
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if strings.Contains(req.URL.Path, p.faults.StatusPath) && p.take(&p.statusLeft) {
		code := p.faults.Status
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "0")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected fault %d"}]}`, code)
		return
	}
	if kind, ok := p.mixed.pick(); ok {
		p.inject(kind, w, req)
		return
	}
	p.rp.ServeHTTP(w, req)
}

// take uses up one of the faults counted by *left.
func (p *proxy) take(left *int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *left <= 0 {
		return false
	}
	*left--
	return true
}

func (p *proxy) modify(resp *http.Response) error {
	if resp.Request.Method != http.MethodGet || resp.StatusCode/100 != 2 || kindOf(resp.Request.URL.Path) != "blob" {
		return nil
	}
	_, ref, _ := parsePath(resp.Request.URL.Path, "blobs")
	switch {
	case p.faults.CorruptBlob != "" && ref == p.faults.CorruptBlob.String():
		resp.Body = &flipFirst{ReadCloser: resp.Body}
	case p.faults.ResetBlob != "" && ref == p.faults.ResetBlob.String() && p.take(&p.resetsLeft):
		// Half the body, then an error: the reverse proxy aborts the
		// handler, which closes the connection under the client.
		resp.Body = &cutAfter{ReadCloser: resp.Body, left: max(resp.ContentLength/2, 1)}
	}
	if p.faults.BlobRate > 0 {
		resp.Body = &throttled{ReadCloser: resp.Body, rate: p.faults.BlobRate, start: time.Now()}
	}
	return nil
}

// throttled passes its body at rate bytes a second, in small reads.
type throttled struct {
	io.ReadCloser
	rate  int64
	start time.Time
	n     int64
}

func (t *throttled) Read(p []byte) (int, error) {
	if chunk := max(t.rate/100, 1); int64(len(p)) > chunk {
		p = p[:chunk]
	}
	n, err := t.ReadCloser.Read(p)
	t.n += int64(n)
	due := t.start.Add(time.Duration(float64(t.n) / float64(t.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		time.Sleep(wait) // the link's pace, not synchronisation
	}
	return n, err
}

// flipFirst inverts the body's first byte.
type flipFirst struct {
	io.ReadCloser
	done bool
}

func (f *flipFirst) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if n > 0 && !f.done {
		p[0] ^= 0xff
		f.done = true
	}
	return n, err
}

var errInjectedReset = errors.New("testregistry: injected connection reset")

// cutAfter passes left bytes, then fails.
type cutAfter struct {
	io.ReadCloser
	left int64
}

func (c *cutAfter) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errInjectedReset
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

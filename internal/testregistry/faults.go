package testregistry

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// FaultKind is one way the proxy's mixed mode makes a request go wrong.
type FaultKind int

const (
	// Fault503 answers 503 Service Unavailable; the upstream never sees
	// the request.
	Fault503 FaultKind = iota
	// Fault429 answers 429 Too Many Requests with Retry-After: 1.
	Fault429
	// FaultReset resets the connection (RST) in the middle of a body: the
	// request's when it has one (an upload), else the answer's after the
	// upstream has answered.
	FaultReset
	// FaultStall holds the answer for Faults.Stall after the upstream has
	// answered: in the middle of its body, or before its headers when it
	// has none.
	FaultStall
	// FaultCut closes the connection after half the answer's body, which
	// announced its whole length, or before an answer without a body.
	FaultCut
)

// AllFaults is every kind, the mix of issue 11.
var AllFaults = []FaultKind{Fault503, Fault429, FaultReset, FaultStall, FaultCut}

func (k FaultKind) String() string {
	switch k {
	case Fault503:
		return "503"
	case Fault429:
		return "429"
	case FaultReset:
		return "reset"
	case FaultStall:
		return "stall"
	case FaultCut:
		return "cut"
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// mixer draws the mixed faults.
type mixer struct {
	rate  float64
	kinds []FaultKind
	stall time.Duration

	mu    sync.Mutex
	rng   *rand.Rand
	count map[FaultKind]int
}

func newMixer(f Faults) *mixer {
	if f.Rate <= 0 {
		return nil
	}
	kinds := f.Kinds
	if len(kinds) == 0 {
		kinds = AllFaults
	}
	stall := f.Stall
	if stall <= 0 {
		stall = 2 * time.Second
	}
	return &mixer{rate: f.Rate, kinds: kinds, stall: stall, rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15)), count: map[FaultKind]int{}}
}

// pick says whether this request meets a fault, and which.
func (m *mixer) pick() (FaultKind, bool) {
	if m == nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rng.Float64() >= m.rate {
		return 0, false
	}
	k := m.kinds[m.rng.IntN(len(m.kinds))]
	m.count[k]++
	return k, true
}

func (m *mixer) injected() map[FaultKind]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[FaultKind]int, len(m.count))
	for k, n := range m.count {
		out[k] = n
	}
	return out
}

type connKey struct{}

// inject makes req meet kind.
func (p *proxy) inject(kind FaultKind, w http.ResponseWriter, req *http.Request) {
	switch kind {
	case Fault503, Fault429:
		code := http.StatusServiceUnavailable
		if kind == Fault429 {
			code = http.StatusTooManyRequests
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected fault %d"}]}`, code)
		return
	}
	conn, _ := req.Context().Value(connKey{}).(net.Conn)
	if kind == FaultReset && hasBody(req) {
		// Half the upload, then the reset: the client is still writing.
		_, _ = io.CopyN(io.Discard, req.Body, max(req.ContentLength/2, 1))
		drop(conn, true)
		return
	}
	resp, body, err := p.forward(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	half := len(body) / 2
	switch {
	case kind == FaultStall && len(body) == 0:
		p.mixed.wait(req)
		writeAnswer(w, resp, body, len(body))
	case kind == FaultStall:
		writeAnswer(w, resp, body, half)
		p.mixed.wait(req)
		_, _ = w.Write(body[half:])
	case len(body) == 0:
		// No body to cut in the middle of: the answer is lost whole,
		// after the upstream did the work.
		drop(conn, kind == FaultReset)
	default:
		writeAnswer(w, resp, body, half)
		drop(conn, kind == FaultReset)
	}
}

// wait holds an answer for the stall, or until the client has gone.
func (m *mixer) wait(req *http.Request) {
	t := time.NewTimer(m.stall)
	defer t.Stop()
	select {
	case <-t.C:
	case <-req.Context().Done():
	}
}

func hasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
}

// forward sends req upstream and reads the answer whole: test blobs are
// small, and a fault needs the body's length.
func (p *proxy) forward(req *http.Request) (*http.Response, []byte, error) {
	out := req.Clone(req.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.upstream.Scheme, p.upstream.Host
	// The client's Host, so that upload locations lead back through us.
	out.Host = req.Host
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// writeAnswer writes resp's headers, announcing the whole body, and its
// first n bytes, flushed onto the wire.
func writeAnswer(w http.ResponseWriter, resp *http.Response, body []byte, n int) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.Header().Del("Transfer-Encoding")
	if n := max(int64(len(body)), resp.ContentLength); n >= 0 {
		w.Header().Set("Content-Length", fmt.Sprint(n))
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, bytes.NewReader(body[:n]))
	_ = http.NewResponseController(w).Flush()
}

// drop closes conn under the answer being written: with a TCP RST when
// reset, else with a FIN, as a server that died or a proxy that gave up.
func drop(conn net.Conn, reset bool) {
	if conn == nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

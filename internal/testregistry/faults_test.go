package testregistry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Each mixed fault, alone at rate 1, does to a plain client what its name
// says.
func TestMixedFaultsDoWhatTheySay(t *testing.T) {
	up := NewDistribution(t)
	img := up.PushImage(t, "app", "v1", ImageSpec{LayerSize: 64 << 10})
	layer := img.Layers[0].Digest
	const stall = 50 * time.Millisecond
	cases := []struct {
		kind   FaultKind
		method string
		check  func(t *testing.T, resp *http.Response, body []byte, err error, took time.Duration)
	}{
		{Fault503, http.MethodGet, wantStatus(http.StatusServiceUnavailable, "")},
		{Fault429, http.MethodGet, wantStatus(http.StatusTooManyRequests, "1")},
		{FaultReset, http.MethodGet, wantBroken(syscall.ECONNRESET)},
		{FaultCut, http.MethodGet, wantBroken(io.ErrUnexpectedEOF)},
		{FaultCut, http.MethodHead, wantBroken(io.EOF)},
		{FaultStall, http.MethodGet, func(t *testing.T, resp *http.Response, body []byte, err error, took time.Duration) {
			if err != nil || digest.FromBytes(body) != layer {
				t.Fatalf("stalled GET: %v, %d bytes", err, len(body))
			}
			if took < stall {
				t.Fatalf("stalled GET took %v, want at least the stall, %v", took, stall)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.kind.String()+" "+c.method, func(t *testing.T) {
			p := NewProxy(t, up, Faults{Rate: 1, Kinds: []FaultKind{c.kind}, Stall: stall})
			start := time.Now()
			resp, body, err := get(t, c.method, blobURL(p, "app", layer), nil)
			c.check(t, resp, body, err, time.Since(start))
			if got := p.Injected()[c.kind]; got != 1 {
				t.Fatalf("Injected()[%s] = %d, want 1", c.kind, got)
			}
		})
	}
}

func wantStatus(code int, retryAfter string) func(*testing.T, *http.Response, []byte, error, time.Duration) {
	return func(t *testing.T, resp *http.Response, _ []byte, err error, _ time.Duration) {
		if err != nil || resp.StatusCode != code || resp.Header.Get("Retry-After") != retryAfter {
			t.Fatalf("got %v %v, want %d with Retry-After %q", resp, err, code, retryAfter)
		}
	}
}

func wantBroken(cause error) func(*testing.T, *http.Response, []byte, error, time.Duration) {
	return func(t *testing.T, _ *http.Response, _ []byte, err error, _ time.Duration) {
		// A reset may land before the headers are read, or after.
		if !errors.Is(err, cause) && !(cause == syscall.ECONNRESET && errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("err = %v, want %v", err, cause)
		}
	}
}

// A reset in the middle of an upload's body reaches the client while it
// writes, and the upstream never sees the PUT.
func TestMixedResetCutsAnUploadBody(t *testing.T) {
	up := NewDistribution(t)
	p := NewProxy(t, up, Faults{Rate: 1, Kinds: []FaultKind{FaultReset}})
	body := bytes.Repeat([]byte("x"), 1<<20)
	req, err := http.NewRequest(http.MethodPut, "http://"+p.Host+"/v2/app/blobs/uploads/whatever", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("PUT through a reset answered %s", resp.Status)
	}
	if n := up.Count("", "upload"); n != 0 {
		t.Fatalf("upstream saw %d upload requests, want none", n)
	}
}

// The same seed draws the same faults for the same sequence of requests.
func TestMixedFaultsFollowTheSeed(t *testing.T) {
	draw := func(seed uint64) []FaultKind {
		m := newMixer(Faults{Rate: 0.5, Seed: seed})
		var out []FaultKind
		for range 50 {
			k, ok := m.pick()
			if !ok {
				k = -1
			}
			out = append(out, k)
		}
		return out
	}
	a, b, c := draw(1), draw(1), draw(2)
	if !equalKinds(a, b) || equalKinds(a, c) {
		t.Fatalf("seed 1 twice: %v / %v; seed 2: %v", a, b, c)
	}
}

func equalKinds(a, b []FaultKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

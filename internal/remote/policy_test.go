package remote

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
)

func TestTransientIsTheOneTest(t *testing.T) {
	status := func(code int) error { return &StatusError{StatusCode: code, Status: http.StatusText(code)} }
	transfer := func(err error) error { return &TransferError{Method: "GET", Path: "/v2/a/blobs/x", Err: err} }
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"408", status(408), true},
		{"429", status(429), true},
		{"500", status(500), true},
		{"502", status(502), true},
		{"503", status(503), true},
		{"504", status(504), true},
		{"containerd's 503", remoteerrors.ErrUnexpectedStatus{StatusCode: 503}, true},
		{"400", status(400), false},
		{"401", status(401), false},
		{"403", status(403), false},
		{"404", status(404), false},
		{"501", status(501), false},
		{"refused", transfer(&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true},
		{"reset", transfer(&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), true},
		{"broken pipe", transfer(syscall.EPIPE), true},
		{"closed before the answer", transfer(io.EOF), true},
		{"body cut short", fmt.Errorf("copying: %w", transfer(io.ErrUnexpectedEOF)), true},
		{"stall", transfer(&StallError{After: time.Second}), true},
		{"timeout", transfer(os.ErrDeadlineExceeded), true},
		{"x509", transfer(x509.UnknownAuthorityError{}), false},
		{"dns", transfer(&net.DNSError{Err: "no such host", Name: "nope.example", IsNotFound: true}), false},
		{"dns timeout", transfer(&net.DNSError{Err: "timeout", Name: "slow.example", IsTimeout: true}), false},
		{"cancelled", transfer(context.Canceled), false},
		{"gave up", &GaveUpError{Attempts: 3, Last: status(503)}, false},
		{"gave up, wrapped", fmt.Errorf("x: %w", &GaveUpError{Attempts: 3, Last: transfer(syscall.ECONNRESET)}), false},
		{"other", errors.New("disk full"), false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Transient(c.err); got != c.want {
				t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestPolicyRetriesTransientFailuresWithinTheBudget(t *testing.T) {
	p := Options{MaxRetries: 3, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}.Policy()
	busy := &StatusError{StatusCode: http.StatusServiceUnavailable}
	for attempt := 1; attempt <= 4; attempt++ {
		wait, ok := p.Retry(attempt, busy)
		if ok != (attempt <= 3) {
			t.Errorf("attempt %d: retry %v, want %v", attempt, ok, attempt <= 3)
		}
		if ok && (wait < 0 || wait > p.MaxBackoff) {
			t.Errorf("attempt %d: wait %v outside [0, %v]", attempt, wait, p.MaxBackoff)
		}
	}
	if _, ok := p.Retry(1, &StatusError{StatusCode: http.StatusNotFound}); ok {
		t.Error("a 404 is retried")
	}
	if _, ok := (Options{MaxRetries: -1}).Policy().Retry(1, busy); ok {
		t.Error("MaxRetries < 0 retries")
	}
}

// One budget per object: each step gets MaxRetries+1 attempts in a row,
// progress starts the count again, and what is not transient, or the
// end of the budget, comes back at once.
func TestAttemptsCountEachStepAndRenewOnProgress(t *testing.T) {
	p := Options{MaxRetries: 2, MinBackoff: time.Microsecond}.Policy()
	ctx, a := p.Attempts(context.Background())
	if again, same := p.Attempts(ctx); again != ctx || same != a {
		t.Fatal("a context carrying a budget was given a second one")
	}
	get := &StatusError{Method: "GET", Path: "/v2/a/blobs/x", StatusCode: 503, step: "GET blob"}
	put := &StatusError{Method: "PUT", Path: "/v2/a/blobs/uploads/u", StatusCode: 503, step: "PUT upload"}
	for i := range 2 {
		if err := a.Retry(ctx, get); err != nil {
			t.Fatalf("GET failure %d: %v, want another attempt", i+1, err)
		}
	}
	// Another step has its own count.
	if err := a.Retry(ctx, put); err != nil {
		t.Fatalf("first PUT failure: %v", err)
	}
	var g *GaveUpError
	if err := a.Retry(ctx, get); !errors.As(err, &g) || g.Attempts != 3 {
		t.Fatalf("third GET failure: %v, want a *GaveUpError after 3 attempts", err)
	}
	a.Progress()
	if err := a.Retry(ctx, get); err != nil {
		t.Fatalf("GET failure after progress: %v, want another attempt", err)
	}
	notFound := &StatusError{StatusCode: 404}
	if err := a.Retry(ctx, notFound); err != notFound {
		t.Fatalf("404: %v, want it back as it is", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Retry(cancelled, put); err != put {
		t.Fatalf("cancelled: %v, want the failure back", err)
	}
}

func TestGaveUpSaysWhereWhatAndWhatToDo(t *testing.T) {
	cases := []struct {
		last error
		want []string
	}{
		{&StatusError{Method: "GET", Registry: "reg:5000", Path: "/v2/a/blobs/sha256:1", StatusCode: 503, Status: "503 Service Unavailable", Body: []byte(`{"errors":[{"code":"UNAVAILABLE","message":"down"}]}`)},
			[]string{"registry reg:5000 failed 12 attempts in a row", "GET /v2/a/blobs/sha256:1: 503 Service Unavailable: UNAVAILABLE down", "run the same command again"}},
		{&StatusError{Method: "PUT", Registry: "reg:5000", Path: "/v2/a/blobs/uploads/u", StatusCode: 429, Status: "429 Too Many Requests"},
			[]string{"429 Too Many Requests", "--concurrency"}},
		{&TransferError{Method: "GET", Registry: "reg:5000", Path: "/v2/a/blobs/sha256:1", Err: &StallError{After: 30 * time.Second}},
			[]string{"no data for 30s", "--stall-timeout"}},
		{&TransferError{Method: "HEAD", Registry: "reg:5000", Path: "/v2/a/manifests/v1", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
			[]string{"reg:5000 is unreachable", "--plain-http"}},
	}
	for _, c := range cases {
		msg := (&GaveUpError{Attempts: 12, Last: c.last}).Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q does not say %q", msg, w)
			}
		}
	}
}

// A cancellation during the wait before a retry ends it with the
// cancellation, not with the failure it was waiting out.
func TestAttemptsEndWithTheCancellationOfTheirWait(t *testing.T) {
	p := Options{MinBackoff: time.Hour}.Policy()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	ctx, a := p.Attempts(ctx)
	err := a.Retry(ctx, &StatusError{StatusCode: http.StatusServiceUnavailable})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Retry = %v, want the context's deadline", err)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	if err := Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0) = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(cancelled, 1h) = %v, want context.Canceled", err)
	}
}

package remote

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// maxRetryAfter caps how long a Retry-After header can make us wait.
const maxRetryAfter = 60 * time.Second

// retryTransport resends a request that met 429, a transient 5xx or a
// dropped connection, with exponential backoff, when the request can be
// replayed (no body, or GetBody set).
type retryTransport struct {
	base       http.RoundTripper
	maxRetries int
	minBackoff time.Duration
}

func newRetryTransport(base http.RoundTripper, maxRetries int, minBackoff time.Duration) *retryTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	if maxRetries == 0 {
		maxRetries = DefaultMaxRetries
	}
	if minBackoff <= 0 {
		minBackoff = DefaultMinBackoff
	}
	return &retryTransport{base: base, maxRetries: max(maxRetries, 0), minBackoff: minBackoff}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		try, err := rewound(req, attempt)
		if err != nil {
			return nil, err
		}
		resp, err := t.base.RoundTrip(try)
		if attempt >= t.maxRetries || !replayable(req) || !retryable(ctx, resp, err) {
			return resp, err
		}
		wait := t.backoff(attempt, resp)
		if resp != nil {
			// Drain a little so the connection can be reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// Sleep waits for d, or less if ctx ends first, which it reports: the
// backoff of every retry loop.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rewound is req for the first attempt and a copy with a fresh body for
// the others: a RoundTripper must not alter the caller's request.
func rewound(req *http.Request, attempt int) (*http.Request, error) {
	if attempt == 0 || req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	return r, nil
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func retryable(ctx context.Context, resp *http.Response, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
			errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the wait before retry attempt+1: the server's Retry-After
// when it sent one, else minBackoff doubled per attempt with jitter.
func (t *retryTransport) backoff(attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			return d
		}
	}
	d := t.minBackoff << min(attempt, 10)
	return d/2 + rand.N(d/2+1)
}

func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxRetryAfter), true
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(at), 0), maxRetryAfter), true
	}
	return 0, false
}

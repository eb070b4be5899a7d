package remote

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// The policy's defaults, for Options left zero.
const (
	// DefaultMaxRetries is how many failed attempts in a row one step of
	// one object gets after the first: 12 attempts in all. At 20% of
	// requests failing at random, 6 attempts (oras-go's and containerd's
	// count) lose one step in 15 000, a few per hundred bundles; 12 lose
	// one in 200 million. With the backoff below they also span about a
	// minute, which a restarting registry or a flapping link needs.
	DefaultMaxRetries = 11
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	// DefaultMaxRetryAfter caps how long a Retry-After header makes us wait.
	DefaultMaxRetryAfter = 60 * time.Second
	// DefaultStallTimeout is how long a connection may carry nothing while
	// we wait on it before it is cut and the request retried or resumed.
	DefaultStallTimeout = 30 * time.Second
)

// Policy decides, for every failed attempt of every request bundle makes,
// whether to try again and how long to wait first: the one retry policy,
// in the shape of oras-go's retry.Policy. Attempts carries its budget.
type Policy struct {
	// MaxRetries is how many failed attempts in a row one step of one
	// object (a blob's GET, an upload's PUT) may retry; < 0 means none.
	// A step that made progress (verified bytes) starts its count again.
	MaxRetries int
	// MinBackoff is the first wait, doubled after each failure up to
	// MaxBackoff, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps the wait a Retry-After header asks for.
	MaxRetryAfter time.Duration
	// StallTimeout cuts a connection that carried nothing for this long
	// while we waited on it; <= 0 never does.
	StallTimeout time.Duration
}

// Policy is the retry policy Options ask for, defaults filled in.
func (o Options) Policy() Policy {
	p := Policy{
		MaxRetries:    o.MaxRetries,
		MinBackoff:    o.MinBackoff,
		MaxBackoff:    o.MaxBackoff,
		MaxRetryAfter: o.MaxRetryAfter,
		StallTimeout:  o.StallTimeout,
	}
	if p.MaxRetries == 0 {
		p.MaxRetries = DefaultMaxRetries
	}
	if p.MinBackoff <= 0 {
		p.MinBackoff = DefaultMinBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = max(DefaultMaxBackoff, p.MinBackoff)
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if p.StallTimeout == 0 {
		p.StallTimeout = DefaultStallTimeout
	}
	return p
}

// Retry says whether a step that has now failed attempt times in a row
// (from 1), the last time with err, deserves another attempt, and how long
// to wait before it. Unlike oras-go's it takes no *http.Response: by the
// time it is asked, an unwanted answer is a *StatusError carrying its
// Retry-After.
func (p Policy) Retry(attempt int, err error) (time.Duration, bool) {
	if attempt > p.MaxRetries || !Transient(err) {
		return 0, false
	}
	var se *StatusError
	if errors.As(err, &se) {
		if d, ok := retryAfter(se.RetryAfter, p.MaxRetryAfter); ok {
			return d, true
		}
	}
	return p.backoff(attempt), true
}

// backoff is the wait after failure number attempt (from 1): MinBackoff
// doubling up to MaxBackoff, each drawn from its upper half so that many
// transfers failing together do not come back together.
func (p Policy) backoff(attempt int) time.Duration {
	d := min(p.MinBackoff<<min(attempt-1, 30), p.MaxBackoff)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads a Retry-After header: seconds or an HTTP date, capped.
func retryAfter(v string, limit time.Duration) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, limit), true
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(at), 0), limit), true
	}
	return 0, false
}

// Sleep waits for d, or less if ctx ends first, which it reports.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

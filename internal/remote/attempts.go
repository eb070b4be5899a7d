package remote

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
)

// Attempts is one object's retry budget under a Policy: how many attempts
// in a row each of its steps (a blob's GET, an upload's POST and PUT) has
// failed since that step last succeeded or the object last made progress. It travels in the context,
// so that every layer that retries that object (the transport for a
// request it can replay, the blob stream that resumes a body, the upload
// that starts again with a fresh POST) draws from the same budget: retries
// never multiply, and a persistent failure costs at most MaxRetries+1
// attempts of a step.
type Attempts struct {
	policy Policy

	mu     sync.Mutex
	failed map[string]int // by step
}

type attemptsKey struct{}

// Attempts returns ctx carrying a fresh budget for one object, and the
// budget; when ctx carries one already, that one, so that a caller nesting
// work on the same object cannot grant it a second budget.
func (p Policy) Attempts(ctx context.Context) (context.Context, *Attempts) {
	if a := attemptsFrom(ctx); a != nil {
		return ctx, a
	}
	a := newAttempts(p)
	return context.WithValue(ctx, attemptsKey{}, a), a
}

func newAttempts(p Policy) *Attempts { return &Attempts{policy: p, failed: map[string]int{}} }

func attemptsFrom(ctx context.Context) *Attempts {
	a, _ := ctx.Value(attemptsKey{}).(*Attempts)
	return a
}

// Retry records err as a failed attempt and, when the policy grants
// another, waits the policy's time and returns nil: try again. Otherwise it
// returns what to end with: err itself when it is not transient (or ctx
// had ended), a *GaveUpError when the budget is spent, ctx's error when it
// ends during the wait.
func (a *Attempts) Retry(ctx context.Context, err error) error {
	if ctx.Err() != nil || !Transient(err) {
		return err
	}
	step := stepOf(err)
	a.mu.Lock()
	a.failed[step]++
	n := a.failed[step]
	a.mu.Unlock()
	wait, ok := a.policy.Retry(n, err)
	if !ok {
		return &GaveUpError{Attempts: n, Last: err}
	}
	// Cancelled while waiting: the cancellation is why it ends.
	return Sleep(ctx, wait)
}

// succeeded says a step's answer came whole: its failures so far were not
// in a row with the next. (An answer whose body is still to be read does
// not count: a blob cut at the same byte every time must run out of its
// budget; only Progress renews that.)
func (a *Attempts) succeeded(step string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.failed, step)
}

// Progress says the object moved on (verified bytes arrived): its steps'
// failures so far no longer count against it.
func (a *Attempts) Progress() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.failed)
}

// Run runs fn until it succeeds or Retry says to stop, fn's requests
// drawing from the same budget through ctx.
func (p Policy) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, a := p.Attempts(ctx)
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if err = a.Retry(ctx, err); err != nil {
			return err
		}
	}
}

// stepOf names the step a failure belongs to: its method and the kind of
// registry path, so that a blob GET answered 503 and a blob GET whose body
// broke count as one step, and an upload's POST and PUT as two.
func stepOf(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return se.step
	}
	var te *TransferError
	if errors.As(err, &te) {
		return te.step
	}
	return ""
}

// stepOfRequest is the step of req: that of the request it was redirected
// from, if it was (a blob GET sent on to a CDN is still a blob GET).
func stepOfRequest(req *http.Request) string {
	first := origin(req)
	return first.Method + " " + pathKind(first.URL.Path)
}

// origin is the request a chain of redirects started from.
func origin(req *http.Request) *http.Request {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	return req
}

// pathKind classifies a registry API path: "blob", "upload", "manifest",
// "referrers", "tags", or "" for anything else (a token server, a CDN).
func pathKind(path string) string {
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
	return ""
}

package remote

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bundle-dev/bundle/internal/graph"
)

// maxDocument bounds the answers the transport reads whole before handing
// them over: manifests, indexes, tag and referrer lists, tokens, errors.
// A larger one is passed on as a stream, for the caller's bound to refuse.
const maxDocument = graph.MaxManifestSize

// transport is the one place every request of bundle goes through, whoever
// makes it (containerd's resolver, fetcher, pusher and authorizer, or our
// Client): it retries what the policy calls transient, cuts stalls, reads
// small documents whole so that a body cut short is retried like any other
// failure, and keeps credentials from following a redirect elsewhere.
//
// It retries a request itself only when it can replay it (no body, or
// GetBody for a fresh one each attempt); it hands any other failure back
// unchanged, for the request's owner to retry the unit the request belongs
// to (an upload starts again with a fresh POST). Either way the attempts
// come from the budget in the request's context (Attempts), or from one of
// its own for a request that carries none.
type transport struct {
	base   http.RoundTripper
	policy Policy
	debug  *debugLog // nil: no request log
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = withoutForeignCredentials(req)
	ctx := req.Context()
	a := attemptsFrom(ctx)
	if a == nil {
		a = newAttempts(t.policy)
	}
	for attempt := 0; ; attempt++ {
		try, err := rewound(req, attempt)
		if err != nil {
			return nil, final{err}
		}
		resp, err := t.once(try)
		var failure error
		switch {
		case err != nil && !Transient(err):
			return nil, final{err}
		case err != nil:
			failure = err
		case !transientStatus(resp.StatusCode):
			if whole(resp) {
				a.succeeded(stepOfRequest(req))
			}
			return resp, nil
		}
		if !replayable(req) {
			return resp, err
		}
		if failure == nil {
			failure = newStatusError(resp)
		}
		if err := a.Retry(ctx, failure); err != nil {
			return nil, final{err}
		}
	}
}

// once makes one attempt under a watchdog. A request error, or a body
// error while a document is read, is a *TransferError.
func (t *transport) once(req *http.Request) (*http.Response, error) {
	w, ctx := newWatchdog(req.Context(), t.policy.StallTimeout)
	out := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = &sendingBody{ReadCloser: req.Body, w: w, size: req.ContentLength}
	}
	w.wait(w.timeout)
	start := time.Now()
	resp, err := t.base.RoundTrip(out)
	w.answer()
	t.debug.log(req, resp, err, start)
	if err != nil {
		err = w.explain(ctx, err)
		w.release()
		return nil, newTransferError(req, err)
	}
	resp.Body = &watchedBody{rc: resp.Body, w: w, ctx: ctx, req: req}
	if !isDocument(req) {
		return resp, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if len(data) > maxDocument {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = readWhole{bytes.NewReader(data)}
	resp.ContentLength = int64(len(data))
	return resp, nil
}

// whole reports whether resp's answer is all in: read whole, or without
// a body.
func whole(resp *http.Response) bool {
	if resp.Request.Method == http.MethodHead || resp.ContentLength == 0 {
		return true
	}
	_, read := resp.Body.(readWhole)
	return read
}

// readWhole is the body of an answer the transport read whole.
type readWhole struct{ *bytes.Reader }

func (readWhole) Close() error { return nil }

// isDocument tells the answers read whole: any GET but a blob's (a
// redirect keeps the kind of the request it came from).
func isDocument(req *http.Request) bool {
	first := origin(req)
	return req.Method == http.MethodGet && pathKind(first.URL.Path) != "blob"
}

// rewound is req for the first attempt and a copy with a fresh body from
// GetBody for the others: a body is never shared between two attempts, and
// a RoundTripper must not alter the caller's request.
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

// withoutForeignCredentials drops Authorization from a redirect that left
// the origin (scheme, host and port) of the first request. net/http keeps
// it for any port of the same host name, and containerd authorizes every
// redirect anew; a CDN that serves blobs needs no registry token, and a
// server on another port of the same host is another server.
func withoutForeignCredentials(req *http.Request) *http.Request {
	if req.Response == nil || req.Header.Get("Authorization") == "" {
		return req
	}
	if sameOrigin(origin(req).URL.Scheme, origin(req).URL.Host, req.URL.Scheme, req.URL.Host) {
		return req
	}
	out := req.Clone(req.Context())
	out.Header.Del("Authorization")
	return out
}

// sameOrigin compares scheme, host and effective port.
func sameOrigin(scheme1, host1, scheme2, host2 string) bool {
	return strings.EqualFold(scheme1, scheme2) && strings.EqualFold(withPort(scheme1, host1), withPort(scheme2, host2))
}

func withPort(scheme, host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host
	}
	if strings.EqualFold(scheme, "http") {
		return host + ":80"
	}
	return host + ":443"
}

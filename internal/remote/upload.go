package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Blobs go up in a POST and one PUT ?digest= with Content-Length, written
// here rather than through containerd's pusher. The pusher hands the body
// to the transport through an io.Pipe on another goroutine (a copy and two
// goroutine switches per 32 KiB), hashes again what the caller's verifying
// reader already hashed, and cannot say how a blob arrived (mounted or
// uploaded) without a second request.

// PushResult says how a blob got into a repository.
type PushResult int

const (
	Uploaded PushResult = iota // its bytes were sent
	Mounted                    // mounted from another repository
	Existed                    // the registry had it already
)

// readBufferSize is the most read from the source at once: one pread or
// one run of zstd decoding per MiB instead of per 32 KiB, the size
// net/http asks a body for.
const readBufferSize = 1 << 20

// PushBlob brings blob d into repo: a cross-repository mount from
// mountFrom (a repository path on the same registry) when given and the
// registry agrees, else an upload of open()'s bytes, which the caller has
// wrapped in a verifying reader. counted sees every byte sent.
//
// An upload is one unit under the policy: a PUT cannot be replayed into
// the same session, so a failed one starts again with a fresh POST and a
// fresh reader from open(); the POST's own failures are retried by the
// transport. Both draw from one budget.
func (c *Client) PushBlob(ctx context.Context, repo string, d ocispec.Descriptor, mountFrom string, open func() (io.ReadCloser, error), counted io.Writer) (PushResult, error) {
	ctx, attempts := c.policy.Attempts(ctx)
	var last error
	for {
		res, err := c.uploadOnce(ctx, repo, d, mountFrom, open, counted)
		if err == nil {
			return res, nil
		}
		var se *sourceError
		if errors.As(err, &se) {
			if last != nil && se.open {
				// The source cannot be read twice (a stream): the
				// failure before is the one that says what went wrong.
				return Uploaded, last
			}
			return Uploaded, se.err
		}
		if rerr := attempts.Retry(ctx, err); rerr != nil {
			return Uploaded, rerr
		}
		last = err
	}
}

// sourceError marks a failure to open or read the source of a blob (the
// bundle), as opposed to a failure to send it: no network retry mends it.
type sourceError struct {
	err  error
	open bool // opening failed, as opposed to reading
}

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// uploadOnce makes one attempt: POST (with the mount when asked), then the
// whole blob in one PUT.
func (c *Client) uploadOnce(ctx context.Context, repo string, d ocispec.Descriptor, mountFrom string, open func() (io.ReadCloser, error), counted io.Writer) (PushResult, error) {
	rest := "blobs/uploads/"
	if mountFrom != "" {
		rest += "?" + url.Values{"mount": {d.Digest.String()}, "from": {mountFrom}}.Encode()
	}
	resp, err := c.do(ctx, http.MethodPost, repo, rest, nil, nil)
	if err != nil {
		return Uploaded, err
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		drain(resp)
		if mountFrom != "" {
			return Mounted, nil
		}
		return Existed, nil
	case http.StatusAccepted:
		drain(resp)
	default:
		return Uploaded, newStatusError(resp)
	}
	target, err := uploadURL(resp.Request.URL, resp.Header.Get("Location"), registryOf(repo), d)
	if err != nil {
		return Uploaded, err
	}
	rc, err := open()
	if err != nil {
		return Uploaded, &sourceError{err: err, open: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, target.String(), newUploadBody(rc, counted, d.Size))
	if err != nil {
		rc.Close()
		return Uploaded, fmt.Errorf("upload of %s to %s: %w", d.Digest, repo, err)
	}
	req.ContentLength = d.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.send(ctx, req)
	if err != nil {
		return Uploaded, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		return Uploaded, newStatusError(resp)
	}
	return Uploaded, nil
}

func registryOf(repo string) string {
	host, _, _ := strings.Cut(repo, "/")
	return host
}

// uploadURL is the PUT address of an upload session the registry opened
// at loc, with the digest that closes it. An address on the host that
// answered is given the registry's name instead, so that the PUT goes
// through the same configured host, connection pool and credentials.
func uploadURL(answered *url.URL, loc, registry string, d ocispec.Descriptor) (*url.URL, error) {
	if loc == "" {
		return nil, fmt.Errorf("%s opened an upload for %s without a Location: the registry does not follow the distribution API", registry, d.Digest)
	}
	u, err := answered.Parse(loc)
	if err != nil {
		// The Location carries the session's state: not worth printing.
		return nil, fmt.Errorf("%s answered the upload of %s with a Location that is no URL", registry, d.Digest)
	}
	if u.Host == answered.Host {
		u.Host = registry
	}
	q := u.Query()
	q.Set("digest", d.Digest.String())
	u.RawQuery = q.Encode()
	return u, nil
}

// uploadBody is one attempt's request body. net/http owns it once the
// request is sent and may go on reading it from its own goroutine after
// the attempt failed, until it closes it: so nothing of it is shared with
// another attempt, and its source and buffer are released only by Close,
// which waits for a Read in progress. (A pooled buffer returned when the
// attempt ended, and read by net/http after, was a nil-pointer panic.)
type uploadBody struct {
	mu      sync.Mutex
	rc      io.ReadCloser
	br      *bufio.Reader
	counted io.Writer
	closed  bool
}

func newUploadBody(rc io.ReadCloser, counted io.Writer, size int64) *uploadBody {
	return &uploadBody{rc: rc, br: bufio.NewReaderSize(rc, int(min(max(size, 16), readBufferSize))), counted: counted}
}

var errBodyClosed = errors.New("upload body read after close")

func (b *uploadBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	n, err := b.br.Read(p)
	if n > 0 && b.counted != nil {
		_, _ = b.counted.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		err = &sourceError{err: err}
	}
	return n, err
}

func (b *uploadBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.br = nil
	return b.rc.Close()
}

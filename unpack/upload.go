package unpack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/verify"
)

// Blobs go up in a POST and one PUT ?digest= with Content-Length, written
// here over remote.Do rather than through containerd's pusher. The pusher
// hands the body to the transport through an io.Pipe on another goroutine
// (a copy and two goroutine switches per 32 KiB), hashes again what the
// verifying reader already hashed, and cannot say how a blob arrived
// (mounted or uploaded) without a second request. Measured on 256 MiB into
// distribution 2.8 (BenchmarkImportProcess): see the numbers in the issue.

const (
	// readBufferSize is how much is read from the bundle at once: one pread
	// or one run of zstd decoding per MiB instead of per 32 KiB, the size
	// net/http asks its body for.
	readBufferSize = 1 << 20
	// uploadAttempts bounds how often one blob's upload is started afresh
	// after a dropped connection or a 5xx, when the source can be reopened.
	uploadAttempts = 3
	uploadBackoff  = 200 * time.Millisecond
)

var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// uploadBlob brings blob d into repo: a cross-repo mount from mountFrom when
// given and the registry agrees, else an upload of open()'s bytes (which
// the caller has wrapped in the verifying reader). counted sees every byte
// sent. A failed attempt that can be retried is started again from a fresh
// POST with a fresh reader.
func (r *registry) uploadBlob(ctx context.Context, repo string, d ocispec.Descriptor, mountFrom string, open func() (io.ReadCloser, error), counted io.Writer) (pushResult, error) {
	var last error
	for attempt := 0; ; attempt++ {
		res, err := r.uploadOnce(ctx, repo, d, mountFrom, open, counted)
		var se *sourceError
		if errors.As(err, &se) && last != nil {
			// The source cannot be read twice (a stream): the first
			// failure is the one that says what went wrong.
			return uploaded, last
		}
		if err == nil || attempt+1 >= uploadAttempts || !retryableUpload(ctx, err) {
			return res, err
		}
		last = err
		if remote.Sleep(ctx, uploadBackoff<<attempt) != nil {
			return uploaded, err
		}
	}
}

// sourceError marks a failure to open the bundle's copy of a blob, as
// opposed to a failure to send it.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// uploadOnce makes one attempt: POST (with the mount when asked), then the
// whole blob in one PUT.
func (r *registry) uploadOnce(ctx context.Context, repo string, d ocispec.Descriptor, mountFrom string, open func() (io.ReadCloser, error), counted io.Writer) (pushResult, error) {
	path := "blobs/uploads/"
	if mountFrom != "" {
		path += "?" + url.Values{"mount": {d.Digest.String()}, "from": {mountFrom}}.Encode()
	}
	resp, err := r.do(ctx, http.MethodPost, repo, path, nil, "")
	if err != nil {
		return uploaded, err
	}
	loc := resp.Header.Get("Location")
	switch resp.StatusCode {
	case http.StatusCreated:
		drain(resp)
		if mountFrom != "" {
			return mounted, nil
		}
		return existed, nil
	case http.StatusAccepted:
		drain(resp)
	default:
		defer resp.Body.Close()
		return uploaded, statusError(resp)
	}
	target, err := r.uploadURL(resp.Request.URL, loc, d)
	if err != nil {
		return uploaded, err
	}
	rc, err := open()
	if err != nil {
		return uploaded, &sourceError{err}
	}
	defer rc.Close()
	br := readBuffers.Get().(*bufio.Reader)
	br.Reset(rc)
	defer func() { br.Reset(nil); readBuffers.Put(br) }()
	body := io.Reader(br)
	if counted != nil {
		body = io.TeeReader(br, counted)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, target.String(), io.NopCloser(body))
	if err != nil {
		return uploaded, fmt.Errorf("upload of %s to %s: %w", d.Digest, r.name(repo), err)
	}
	req.ContentLength = d.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = remote.Do(ctx, r.hosts, req)
	if err != nil {
		return uploaded, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		return uploaded, statusError(resp)
	}
	return uploaded, nil
}

// uploadURL is the PUT address of an upload session the registry opened at
// loc, with the digest that closes it. The address is given by the
// registry's name, not the host that answered, so that remote.Do picks the
// same configured host, connection pool and credentials for it.
func (r *registry) uploadURL(answered *url.URL, loc string, d ocispec.Descriptor) (*url.URL, error) {
	if loc == "" {
		return nil, fmt.Errorf("%s opened an upload for %s without a Location: the registry does not follow the distribution API", r.host, d.Digest)
	}
	u, err := answered.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("%s answered the upload of %s with a bad Location %q: %w", r.host, d.Digest, loc, err)
	}
	if u.Host == answered.Host {
		u.Host = r.host
	}
	q := u.Query()
	q.Set("digest", d.Digest.String())
	u.RawQuery = q.Encode()
	return u, nil
}

// retryableUpload tells a failure worth a fresh attempt: the connection
// dropped or the registry was briefly unable. A blob that does not match
// its digest, or an answer that will not change, is final.
func retryableUpload(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var mm *verify.MismatchError
	if errors.As(err, &mm) {
		return false
	}
	var st remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &st) {
		return st.StatusCode == http.StatusTooManyRequests || st.StatusCode >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// drain reads a little of an answer's body and closes it, so that its
// connection goes back to the pool.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Client speaks just enough of the distribution API over plain HTTP to
// push a data set and time reads and uploads: monolithic uploads, mounts,
// manifests, and GETs that discard.
type Client struct {
	Base string // http://HOST:PORT
	HTTP *http.Client
}

// NewClient talks to the registry at host.
func NewClient(host string) *Client {
	return &Client{Base: "http://" + host, HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

func (c *Client) do(ctx context.Context, method, target string, header http.Header, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	return resp, nil
}

// expect closes resp and fails unless its status is one of want.
func expect(resp *http.Response, what string, want ...int) error {
	defer resp.Body.Close()
	for _, w := range want {
		if resp.StatusCode == w {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return fmt.Errorf("%s: %s: %s", what, resp.Status, bytes.TrimSpace(msg))
}

// UploadBlob pushes body as d into repo in one PUT (POST, then PUT ?digest=),
// streaming it.
func (c *Client) UploadBlob(ctx context.Context, repo string, d ocispec.Descriptor, body io.Reader) error {
	what := fmt.Sprintf("uploading blob %s to %s", d.Digest, repo)
	resp, err := c.do(ctx, http.MethodPost, c.Base+"/v2/"+repo+"/blobs/uploads/", nil, nil, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	loc := resp.Header.Get("Location")
	if err := expect(resp, what, http.StatusAccepted); err != nil {
		return err
	}
	target, err := url.Parse(c.Base + "/")
	if err == nil {
		target, err = target.Parse(loc)
	}
	if err != nil || loc == "" {
		return fmt.Errorf("%s: bad upload location %q: %v", what, loc, err)
	}
	q := target.Query()
	q.Set("digest", d.Digest.String())
	target.RawQuery = q.Encode()
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err = c.do(ctx, http.MethodPut, target.String(), h, body, d.Size)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return expect(resp, what, http.StatusCreated)
}

// MountBlob links d from repo from into repo; mounted is false when the
// registry declined (it then opened an upload, which is left to expire).
func (c *Client) MountBlob(ctx context.Context, repo, from string, d ocispec.Descriptor) (mounted bool, err error) {
	target := fmt.Sprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", c.Base, repo, url.QueryEscape(d.Digest.String()), url.QueryEscape(from))
	resp, err := c.do(ctx, http.MethodPost, target, nil, nil, 0)
	if err != nil {
		return false, fmt.Errorf("mounting blob %s from %s into %s: %w", d.Digest, from, repo, err)
	}
	if resp.StatusCode == http.StatusAccepted {
		_ = expect(resp, "")
		return false, nil
	}
	return true, expect(resp, fmt.Sprintf("mounting blob %s from %s into %s", d.Digest, from, repo), http.StatusCreated)
}

// PutManifest pushes a manifest under ref (a tag or its digest).
func (c *Client) PutManifest(ctx context.Context, repo, ref string, d ocispec.Descriptor, data []byte) error {
	h := http.Header{"Content-Type": {d.MediaType}}
	resp, err := c.do(ctx, http.MethodPut, c.Base+"/v2/"+repo+"/manifests/"+ref, h, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("pushing manifest %s as %s:%s: %w", d.Digest, repo, ref, err)
	}
	return expect(resp, fmt.Sprintf("pushing manifest %s as %s:%s", d.Digest, repo, ref), http.StatusCreated)
}

// Get reads one blob or manifest and throws the bytes away, returning how
// many there were.
func (c *Client) Get(ctx context.Context, repo string, d ocispec.Descriptor, manifest bool) (int64, error) {
	return c.GetTo(ctx, repo, d, manifest, io.Discard)
}

// GetTo reads one blob or manifest into w, returning how many bytes there
// were; fewer or more than d.Size is an error.
func (c *Client) GetTo(ctx context.Context, repo string, d ocispec.Descriptor, manifest bool, w io.Writer) (int64, error) {
	kind, h := "blobs", http.Header{}
	if manifest {
		kind = "manifests"
		h.Set("Accept", d.MediaType)
	}
	what := fmt.Sprintf("reading %s from %s", d.Digest, repo)
	resp, err := c.do(ctx, http.MethodGet, c.Base+"/v2/"+repo+"/"+kind+"/"+d.Digest.String(), h, nil, 0)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, expect(resp, what, http.StatusOK)
	}
	// Reading one byte past the size tells a longer body, without letting
	// it run past its place when w writes into a shared file.
	n, err := io.Copy(w, io.LimitReader(resp.Body, d.Size+1))
	if err != nil {
		return n, fmt.Errorf("%s: %w", what, err)
	}
	if n != d.Size {
		return n, fmt.Errorf("%s: got %d bytes, want %d", what, n, d.Size)
	}
	return n, nil
}

// Push uploads ds into the registry: blobs (generated while they stream,
// mounted into the other repositories that share them), then manifests in
// order under their digests and tags, then the fallback tag indexes.
func Push(ctx context.Context, c *Client, ds *DataSet) error {
	if err := forEach(ctx, ds.Blobs, runtime.GOMAXPROCS(0), func(it Item) error {
		return pushBlob(ctx, c, it, ds.BlobRepos[it.Desc.Digest])
	}); err != nil {
		return err
	}
	for _, m := range append(append([]Item(nil), ds.Manifests...), ds.Fallback...) {
		refs := m.Tags
		if len(refs) == 0 {
			refs = []string{m.Desc.Digest.String()}
		}
		for _, ref := range refs {
			if err := c.PutManifest(ctx, m.Repo, ref, m.Desc, m.Data); err != nil {
				return err
			}
		}
	}
	return nil
}

func pushBlob(ctx context.Context, c *Client, it Item, repos []string) error {
	if err := c.UploadBlob(ctx, repos[0], it.Desc, it.Open()); err != nil {
		return err
	}
	for _, r := range repos[1:] {
		mounted, err := c.MountBlob(ctx, r, repos[0], it.Desc)
		if err != nil {
			return err
		}
		if !mounted {
			if err := c.UploadBlob(ctx, r, it.Desc, it.Open()); err != nil {
				return err
			}
		}
	}
	return nil
}

// forEach runs fn over items with n at once and returns the first error;
// after an error the remaining items are not started.
func forEach(ctx context.Context, items []Item, n int, fn func(Item) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(it); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

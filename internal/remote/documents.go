package remote

import (
	"context"
	"fmt"
	"mime"
	"net/http"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/graph"
)

// Manifest reads manifest ref (tag or digest) of repo, whole and bounded
// (the transport read it whole, so a body cut short was retried), with
// its media type from the answer. accept lists the media types asked for.
// A manifest that is not there wraps errdefs.ErrNotFound.
func (c *Client) Manifest(ctx context.Context, repo, ref, accept string) ([]byte, string, error) {
	resp, err := c.do(ctx, http.MethodGet, repo, "manifests/"+ref, nil, http.Header{"Accept": {accept}})
	if err != nil {
		return nil, "", err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, "", fmt.Errorf("manifest %s of %s: %w", ref, repo, errdefs.ErrNotFound)
	default:
		return nil, "", newStatusError(resp)
	}
	data, err := graph.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("manifest %s of %s: %w", ref, repo, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return data, mt, nil
}

// ManifestDigest returns the digest tag or digest ref names in repo, ""
// when it does not exist.
func (c *Client) ManifestDigest(ctx context.Context, repo, ref, accept string) (digest.Digest, error) {
	resp, err := c.do(ctx, http.MethodHead, repo, "manifests/"+ref, nil, http.Header{"Accept": {accept}})
	if err != nil {
		return "", err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return digest.Digest(resp.Header.Get("Docker-Content-Digest")), nil
	case http.StatusNotFound:
		return "", nil
	}
	return "", newStatusError(resp)
}

// PutManifest stores data as manifest ref (a tag or digest) of repo. The
// request is replayable: the transport retries it as any other.
func (c *Client) PutManifest(ctx context.Context, repo, ref, mediaType string, data []byte) error {
	resp, err := c.do(ctx, http.MethodPut, repo, "manifests/"+ref, data, http.Header{"Content-Type": {mediaType}})
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return newStatusError(resp)
	}
	return nil
}

// BlobExists asks whether repo holds blob d.
func (c *Client) BlobExists(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, repo, "blobs/"+d.String(), nil, nil)
	if err != nil {
		return false, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, newStatusError(resp)
}

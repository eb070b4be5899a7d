package unpack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/referrers"
)

// registry is the target side of an import: our own uploader for blobs
// (upload.go says why), containerd's pusher for manifests (it HEADs first,
// so an identical manifest or tag is not PUT again), raw authorised calls
// for what the pusher does not offer (a blob HEAD, artifact manifests), and
// the referrers publisher.
type registry struct {
	host     string
	resolver remotes.Resolver
	hosts    docker.RegistryHosts
	pub      *referrers.Publisher
}

func (r *registry) name(repo string) string { return r.host + "/" + repo }

// blobExists asks the target whether repo holds blob d.
func (r *registry) blobExists(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, http.MethodHead, repo, "blobs/"+d.String(), nil, "")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, statusError(resp)
}

// pushResult says how a blob got into a repository.
type pushResult int

const (
	uploaded pushResult = iota
	mounted
	existed
)

// pushBlob puts blob d into repo: mounted from mountFrom when given and the
// registry agrees, else uploaded from open(). The caller has checked that
// repo lacks d, so a 201 to a mount request means mounted.
func (r *registry) pushBlob(ctx context.Context, repo string, d ocispec.Descriptor, mountFrom string, open func() (io.ReadCloser, error), counted io.Writer) (pushResult, error) {
	return r.uploadBlob(ctx, repo, d, mountFrom, open, counted)
}

// pushManifest puts a manifest's exact bytes into repo, under tag when
// given (a tag push of a manifest already there by digest only tags it).
func (r *registry) pushManifest(ctx context.Context, repo, tag string, d ocispec.Descriptor, raw []byte) error {
	ref := r.name(repo) + "@" + d.Digest.String()
	if tag != "" {
		ref = r.name(repo) + ":" + tag
	}
	if !images.IsManifestType(d.MediaType) && !images.IsIndexType(d.MediaType) {
		// containerd's pusher would upload these as blobs.
		return r.putManifest(ctx, repo, tag, d, raw)
	}
	w, err := r.writer(ctx, ref, "manifest-"+ref+"@"+d.Digest.String(), d)
	if errdefs.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	return content.Copy(ctx, w, bytes.NewReader(raw), d.Size, d.Digest)
}

func (r *registry) putManifest(ctx context.Context, repo, tag string, d ocispec.Descriptor, raw []byte) error {
	object := d.Digest.String()
	if tag != "" {
		object = tag
	}
	// HEAD first, as containerd's pusher does for the other manifests: an
	// import into a target that has everything must not write anything.
	head, err := r.do(ctx, http.MethodHead, repo, "manifests/"+object, nil, "")
	if err != nil {
		return err
	}
	drain(head)
	if head.StatusCode == http.StatusOK && head.Header.Get("Docker-Content-Digest") == d.Digest.String() {
		return nil
	}
	resp, err := r.do(ctx, http.MethodPut, repo, "manifests/"+object, raw, d.MediaType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(resp)
	}
	return nil
}

// writer opens a push writer under our own status key: the resolver's
// tracker is shared, and its default key (the digest) would make a second
// repository or a tag push look done already.
func (r *registry) writer(ctx context.Context, ref, key string, d ocispec.Descriptor) (content.Writer, error) {
	pusher, err := r.resolver.Pusher(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("preparing push to %s: %w", ref, err)
	}
	if ing, ok := pusher.(content.Ingester); ok {
		return ing.Writer(ctx, content.WithRef(key), content.WithDescriptor(d))
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[ocispec.AnnotationRefName] = key
	return pusher.Push(ctx, d)
}

// do makes one authorised request to the target's API for repo; path is
// relative to /v2/<repo>/.
func (r *registry) do(ctx context.Context, method, repo, path string, body []byte, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "https://"+r.host+"/v2/"+repo+"/"+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("request for %s: %w", r.name(repo), err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return remote.Do(ctx, r.hosts, req)
}

// statusError is containerd's error type for an unexpected answer, so that
// callers (and remote.Explain) can read the status and the registry's body.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := remoteerrors.ErrUnexpectedStatus{Status: resp.Status, StatusCode: resp.StatusCode, Body: body}
	if resp.Request != nil {
		e.RequestURL, e.RequestMethod = resp.Request.URL.String(), resp.Request.Method
	}
	return e
}

// registryAnswer is the registry's own words for a refused request.
func registryAnswer(err error) string {
	var st remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &st) {
		if b := strings.TrimSpace(string(st.Body)); b != "" {
			return st.Status + ": " + b
		}
		return st.Status
	}
	return err.Error()
}

// isSparseRefusal reports whether err is a registry refusing an index
// because children it lists are absent.
func isSparseRefusal(err error) bool {
	var st remoteerrors.ErrUnexpectedStatus
	if !errors.As(err, &st) {
		return false
	}
	if st.StatusCode != http.StatusBadRequest && st.StatusCode != http.StatusNotFound {
		return false
	}
	b := string(st.Body)
	return strings.Contains(b, "MANIFEST_BLOB_UNKNOWN") || strings.Contains(b, "MANIFEST_UNKNOWN") ||
		strings.Contains(b, "BLOB_UNKNOWN") || b == ""
}

func hostname(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[:i]
	}
	return host
}

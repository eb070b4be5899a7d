package unpack

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/referrers"
)

// registry is the target side of an import: remote.Client for blobs (HEAD,
// upload, mount) and artifact manifests, containerd's pusher for the other
// manifests (it HEADs first, so an identical manifest or tag is not PUT
// again), and the referrers publisher. Both retry under the one policy.
type registry struct {
	host     string
	resolver remotes.Resolver
	client   *remote.Client
	pub      *referrers.Publisher
}

// newRegistry connects to the target host with opts.
func newRegistry(ctx context.Context, host string, opts remote.Options, mode referrers.Mode) *registry {
	resolver, client := opts.Connect(ctx)
	return &registry{
		host: host, resolver: resolver, client: client,
		pub: &referrers.Publisher{Resolver: resolver, Client: client, Mode: mode},
	}
}

func (r *registry) name(repo string) string { return r.host + "/" + repo }

// blobExists asks the target whether repo holds blob d.
func (r *registry) blobExists(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	return r.client.BlobExists(ctx, r.name(repo), d)
}

// pushManifest puts a manifest's exact bytes into repo, under tag when
// given, in one PUT. The import asks only for what its preflight found
// missing (an image not there under its name), so a HEAD first would only
// double the requests.
func (r *registry) pushManifest(ctx context.Context, repo, tag string, d ocispec.Descriptor, raw []byte) error {
	return r.client.PutManifest(ctx, r.name(repo), refOf(tag, d), d.MediaType, raw)
}

// ensureManifest puts a manifest into repo unless it is there already
// (a HEAD first): for what the preflight did not ask about, such as
// referrers of an image already there, so that importing into a target
// that has everything writes nothing.
func (r *registry) ensureManifest(ctx context.Context, repo, tag string, d ocispec.Descriptor, raw []byte) error {
	have, err := r.client.ManifestDigest(ctx, r.name(repo), refOf(tag, d), d.MediaType)
	if err != nil {
		return err
	}
	if have == d.Digest {
		return nil
	}
	return r.pushManifest(ctx, repo, tag, d, raw)
}

func refOf(tag string, d ocispec.Descriptor) string {
	if tag != "" {
		return tag
	}
	return d.Digest.String()
}

// registryAnswer is the registry's own words for a refused request: the
// status and error document of an answer, else what the request met.
func registryAnswer(err error) string {
	var se *remote.StatusError
	if errors.As(err, &se) {
		if m := se.Message(); m != "" {
			return se.Status + ": " + m
		}
		return se.Status
	}
	var st remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &st) {
		if b := strings.TrimSpace(string(st.Body)); b != "" {
			return st.Status + ": " + b
		}
		return st.Status
	}
	var gaveUp *remote.GaveUpError
	if errors.As(err, &gaveUp) {
		return "no answer it would take"
	}
	return err.Error()
}

// isSparseRefusal reports whether err is a registry refusing an index
// because children it lists are absent.
func isSparseRefusal(err error) bool {
	code, body := 0, ""
	var se *remote.StatusError
	var st remoteerrors.ErrUnexpectedStatus
	switch {
	case errors.As(err, &se):
		code, body = se.StatusCode, string(se.Body)
	case errors.As(err, &st):
		code, body = st.StatusCode, string(st.Body)
	default:
		return false
	}
	if code != http.StatusBadRequest && code != http.StatusNotFound {
		return false
	}
	return strings.Contains(body, "MANIFEST_BLOB_UNKNOWN") || strings.Contains(body, "MANIFEST_UNKNOWN") ||
		strings.Contains(body, "BLOB_UNKNOWN") || body == ""
}

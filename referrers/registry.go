package referrers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
)

// The registry calls of this package go through remote.Client, the one
// registry client: hosts.toml, credentials and the one retry policy apply.

// manifestAccept is what a manifest GET accepts: every type bundle carries.
var manifestAccept = graph.ManifestAccept

// tagPageSize is the page size a tag listing asks for.
const tagPageSize = 1000

// getManifest reads manifest ref (tag or digest) of repo; mediaType,
// when known, is asked for first. A missing manifest wraps
// errdefs.ErrNotFound.
func getManifest(ctx context.Context, c *remote.Client, repo, ref, mediaType string) ([]byte, string, error) {
	accept := manifestAccept
	if mediaType != "" && !strings.Contains(accept, mediaType) {
		accept = mediaType + ", " + accept
	}
	return c.Manifest(ctx, repo, ref, accept)
}

// readFallbackIndex reads the fallback tag index tag of repo; nil when the
// tag is absent.
func readFallbackIndex(ctx context.Context, c *remote.Client, repo, tag string) (*ocispec.Index, error) {
	data, mt, err := getManifest(ctx, c, repo, tag, ocispec.MediaTypeImageIndex)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading fallback index %s:%s: %w", repo, tag, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("reading fallback index %s:%s: %w; delete the tag if it is not a referrers index", repo, tag, err)
	}
	if mt == "" {
		mt = idx.MediaType
	}
	if mt != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("fallback tag %s:%s holds a %q, not an OCI index; it is reserved for referrers: delete it and retry", repo, tag, mt)
	}
	return &idx, nil
}

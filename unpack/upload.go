package unpack

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
)

// pushResult says how a blob got into a repository.
type pushResult int

const (
	uploaded pushResult = iota
	mounted
	existed
)

// pushBlob puts blob d into repo: mounted from mountFrom when given and the
// registry agrees, else uploaded from open(), which remote.Client calls
// afresh for every attempt. The caller has checked that repo lacks d, so a
// 201 to a mount request means mounted.
func (r *registry) pushBlob(ctx context.Context, repo string, d ocispec.Descriptor, mountFrom string, open func() (io.ReadCloser, error), counted io.Writer) (pushResult, error) {
	res, err := r.client.PushBlob(ctx, r.name(repo), d, mountFrom, open, counted)
	switch res {
	case remote.Mounted:
		return mounted, err
	case remote.Existed:
		return existed, err
	}
	return uploaded, err
}

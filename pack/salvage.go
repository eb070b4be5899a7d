package pack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/layout"
)

// salvage puts the blobs a failed run wrote whole into its partial archive
// into the cache, where a rerun finds them: blobs stream into the archive
// without passing through the cache, so without this an interrupted export
// would fetch them all again. Each is checked against its name on the way
// in; the entry cut off by the failure fails that check and is left out.
// It returns how many blobs and bytes it kept.
func (s *source) salvage(ctx context.Context, partial string) (blobs int, bytes int64, err error) {
	f, err := os.Open(partial)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	r, err := layout.NewReader(bufio.NewReaderSize(f, 1<<20), fi.Size())
	if err != nil {
		return 0, 0, fmt.Errorf("reading %s: %w", partial, err)
	}
	for {
		e, err := r.Next()
		if err != nil {
			// The end of what was written: a cut tar or compression stream.
			return blobs, bytes, nil
		}
		d, perr := layout.ParseBlobPath(e.Name)
		if perr != nil || s.cached(ctx, d) {
			continue
		}
		werr := s.keepBlob(ctx, d, e.Size, r)
		switch {
		case werr == nil:
			blobs++
			bytes += e.Size
		case errdefs.IsAlreadyExists(werr):
		case errors.Is(werr, context.Canceled):
			return blobs, bytes, werr
		default:
			// A short or damaged last entry.
			return blobs, bytes, nil
		}
	}
}

// keepBlob writes size bytes of d from r into the cache, which checks the
// digest. A short or damaged blob's ingest is dropped, so that a rerun
// starts it afresh rather than resuming wrong bytes; a cancelled one's is
// kept to resume.
func (s *source) keepBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	err := content.WriteBlob(ctx, s.store, ingestRef(d), r, ocispec.Descriptor{Digest: d, Size: size})
	if err != nil && !errdefs.IsAlreadyExists(err) && !errors.Is(err, context.Canceled) {
		_ = s.store.Abort(context.WithoutCancel(ctx), ingestRef(d))
	}
	return err
}

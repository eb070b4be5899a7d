package verify

import (
	"errors"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/layout"
)

// OpenServed is Open for a server that sends the same blobs again and
// again (bundle serve). The first read of d hashes it as Open does. Once a
// read has reached the end with the digest confirmed, later reads of d
// from a zstd archive skip the hash and say so (checked false): every
// frame bundle writes carries a checksum the decoder checks on each read,
// so a byte changed since still fails the read, and the entry's size is
// the size that was verified. A plain tar or a directory has no such
// check: there every read hashes. An unchecked reader seeks when the
// archive's does.
func (b *Bundle) OpenServed(d ocispec.Descriptor) (rc io.ReadCloser, checked bool, err error) {
	if _, ok := b.verified.Load(d.Digest); ok && b.archive != nil && b.Compression == layout.Zstd {
		if rc, err := b.random.Open(layout.BlobPath(d.Digest)); err == nil {
			return rc, false, nil
		}
	}
	rc, err = b.Open(d)
	if err != nil {
		return nil, true, err
	}
	return &remember{ReadCloser: rc, done: func() { b.verified.Store(d.Digest, true) }}, true, nil
}

// remember calls done when its reader ends with the digest confirmed.
type remember struct {
	io.ReadCloser
	done func()
}

func (r *remember) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		r.done()
	}
	return n, err
}

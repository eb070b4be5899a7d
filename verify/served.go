package verify

import (
	"errors"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/layout"
)

// Served is a blob opened by OpenServed.
type Served struct {
	io.ReadCloser
	// Hashed says the reader checks the digest itself, at its end; one
	// that does not can seek (when the archive's reader can).
	Hashed bool
	// Confirm, called once the reader has been read to its end and before
	// the last bytes are sent, returns nil when the blob's digest is
	// confirmed: by this reader, by an earlier read, or by a read of the
	// same blob running beside this one, which it waits for.
	Confirm func() error
}

// servedState is what OpenServed remembers of a bundle's blobs.
type servedState struct {
	mu       sync.Mutex
	verified map[digest.Digest]bool
	hashing  map[digest.Digest]*verdict
}

// verdict is the outcome of a read that hashes a blob, for the reads
// running beside it.
type verdict struct {
	done chan struct{}
	err  error // nil: confirmed; errNoVerdict: the read stopped before its end
	once sync.Once
}

var errNoVerdict = errors.New("the read that was hashing the blob stopped before its end")

func (v *verdict) finish(err error) {
	v.once.Do(func() {
		v.err = err
		close(v.done)
	})
}

// OpenServed is Open for a server that sends the same blobs again and
// again, to many clients at once (bundle serve). In a zstd archive a blob
// is hashed once: the first read hashes it, reads beside it wait for its
// verdict before their last bytes, and reads after it confirmed the digest
// only keep the checks the archive makes itself: every frame bundle writes
// carries a checksum that the decoder checks on each read, so a byte that
// changed since still fails the read. A plain tar or a directory has no
// such check: there every read hashes.
func (b *Bundle) OpenServed(d ocispec.Descriptor) (*Served, error) {
	if b.archive == nil || b.Compression != layout.Zstd {
		return b.openHashed(d, nil)
	}
	s := &b.served
	s.mu.Lock()
	if s.verified == nil {
		s.verified, s.hashing = map[digest.Digest]bool{}, map[digest.Digest]*verdict{}
	}
	if s.verified[d.Digest] {
		s.mu.Unlock()
		return b.openRaw(d, func() error { return nil })
	}
	if v := s.hashing[d.Digest]; v != nil {
		s.mu.Unlock()
		return b.openRaw(d, func() error {
			<-v.done
			if errors.Is(v.err, errNoVerdict) {
				return b.hashNow(d)
			}
			return v.err
		})
	}
	v := &verdict{done: make(chan struct{})}
	s.hashing[d.Digest] = v
	s.mu.Unlock()
	sv, err := b.openHashed(d, v)
	if err != nil {
		b.settle(d, v, err)
	}
	return sv, err
}

// settle records v's outcome for d.
func (b *Bundle) settle(d ocispec.Descriptor, v *verdict, err error) {
	s := &b.served
	s.mu.Lock()
	if s.hashing[d.Digest] == v {
		delete(s.hashing, d.Digest)
	}
	if err == nil {
		s.verified[d.Digest] = true
	}
	s.mu.Unlock()
	v.finish(err)
}

func (b *Bundle) openRaw(d ocispec.Descriptor, confirm func() error) (*Served, error) {
	rc, err := b.random.Open(layout.BlobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	return &Served{ReadCloser: rc, Confirm: confirm}, nil
}

// openHashed opens d through the digest check; v, when not nil, learns the
// outcome.
func (b *Bundle) openHashed(d ocispec.Descriptor, v *verdict) (*Served, error) {
	rc, err := b.Open(d)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return &Served{ReadCloser: rc, Hashed: true, Confirm: func() error { return nil }}, nil
	}
	return &Served{ReadCloser: &hashing{ReadCloser: rc, settle: func(err error) { b.settle(d, v, err) }}, Hashed: true, Confirm: func() error { return nil }}, nil
}

// hashNow reads d whole through the digest check: for a read whose
// neighbour stopped before giving a verdict.
func (b *Bundle) hashNow(d ocispec.Descriptor) error {
	rc, err := b.Open(d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return err
	}
	s := &b.served
	s.mu.Lock()
	s.verified[d.Digest] = true
	s.mu.Unlock()
	return nil
}

// hashing reports its reader's outcome: confirmed at the end, the error
// that stopped it, or no verdict when closed before its end.
type hashing struct {
	io.ReadCloser
	settle func(error)
	once   sync.Once
}

func (h *hashing) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		h.once.Do(func() { h.settle(nil) })
	case err != nil:
		h.once.Do(func() { h.settle(err) })
	}
	return n, err
}

func (h *hashing) Close() error {
	h.once.Do(func() { h.settle(errNoVerdict) })
	return h.ReadCloser.Close()
}

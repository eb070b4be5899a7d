package verify

import (
	// go-digest only offers the algorithms whose hash package is linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrMismatch is wrapped by every error that reports content whose size or
// digest differs from its descriptor.
var ErrMismatch = errors.New("content does not match its descriptor")

// MismatchError tells which object was damaged and how. GotDigest is empty
// when the reader stopped early because more than Size bytes arrived.
type MismatchError struct {
	Digest    digest.Digest
	Size      int64
	GotDigest digest.Digest
	GotSize   int64
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: %s: got %s: the copy is damaged or truncated, fetch or export it again", ErrMismatch, e.Digest, e.Got())
}

// Got says what came instead of the content the descriptor names.
func (e *MismatchError) Got() string {
	var got string
	switch {
	case e.GotDigest == "" && e.GotSize > e.Size:
		got = fmt.Sprintf("more than the %d bytes its descriptor says", e.Size)
	case e.GotSize != e.Size:
		got = fmt.Sprintf("%d bytes where its descriptor says %d", e.GotSize, e.Size)
	default:
		got = fmt.Sprintf("bytes that hash to %s", e.GotDigest)
	}
	return got
}

// Unwrap lets errors.Is(err, ErrMismatch) match.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// NewReader returns a reader that yields r's bytes while hashing them, and
// that ends with a *MismatchError instead of io.EOF when the content is not
// exactly d.Size bytes hashing to d.Digest. It never asks r for more than
// d.Size+1 bytes, so a hostile source cannot make it read without bound.
func NewReader(r io.Reader, d ocispec.Descriptor) io.Reader {
	if err := d.Digest.Validate(); err != nil {
		return &errReader{fmt.Errorf("cannot verify %q: %w", d.Digest, err)}
	}
	if d.Size < 0 {
		return &errReader{fmt.Errorf("cannot verify %s: negative size %d in its descriptor", d.Digest, d.Size)}
	}
	return &reader{r: r, d: d, h: d.Digest.Algorithm().Hash()}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

type reader struct {
	r   io.Reader
	d   ocispec.Descriptor
	h   hash.Hash
	n   int64
	err error // sticky: once the verdict is in, every Read repeats it
}

func (v *reader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if len(p) == 0 {
		// Some sources spin on an empty buffer; nothing to ask them for.
		return 0, nil
	}
	// One byte beyond the declared size is enough to prove it is too long.
	if limit := v.d.Size - v.n + 1; int64(len(p)) > limit {
		p = p[:limit]
	}
	n, err := v.r.Read(p)
	if n > 0 {
		v.h.Write(p[:n])
		v.n += int64(n)
	}
	if v.n > v.d.Size {
		v.err = &MismatchError{Digest: v.d.Digest, Size: v.d.Size, GotSize: v.n}
		// Hand back only the bytes within the declared size.
		return n - int(v.n-v.d.Size), v.err
	}
	switch {
	case err == io.EOF:
		v.err = v.verdict()
		return n, v.err
	case err != nil:
		v.err = err
	}
	return n, err
}

func (v *reader) verdict() error {
	got := digest.NewDigestFromBytes(v.d.Digest.Algorithm(), v.h.Sum(nil))
	if v.n != v.d.Size || got != v.d.Digest {
		return &MismatchError{Digest: v.d.Digest, Size: v.d.Size, GotDigest: got, GotSize: v.n}
	}
	return io.EOF
}

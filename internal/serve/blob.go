package serve

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/verify"
)

// chunk is the piece a large blob is sent in; the last one read is held
// back until the digest is confirmed. Two per request in flight: what
// keeps serve's memory flat under many pulls.
const chunk = 256 << 10

// smallBlob is the size up to which a blob is read and checked whole
// before the first byte is sent, so that a damaged one gets a proper error
// answer: one chunk. A larger one streams, and a mismatch found at its end
// aborts the connection before its last piece is sent: the client sees a
// short body, never the whole of a wrong one.
const smallBlob = chunk

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunk); return &b }}

func (g *registry) blob(w http.ResponseWriter, r *http.Request, rp *repo, ref string) {
	d, err := digest.Parse(ref)
	if err != nil {
		ociError(w, http.StatusBadRequest, codeDigestInvalid, fmt.Sprintf("%q is not a digest: %v", ref, err))
		return
	}
	b := g.st.blobs[d]
	if b == nil || (!rp.contents[d] && rp.fallbackBytes[d] == nil) {
		ociError(w, http.StatusNotFound, codeBlobUnknown, fmt.Sprintf("blob %s is not in repository %s", d, rp.name))
		return
	}
	size := b.Present[d]
	start, end, partial, ok := parseRange(r.Header.Get("Range"), size)
	if !ok {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		ociError(w, http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, fmt.Sprintf("range %q outside blob %s of %d bytes", r.Header.Get("Range"), d, size))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Accept-Ranges", "bytes")
	h.Set("Etag", `"`+d.String()+`"`)
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
	}
	if r.Method == http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(end-start, 10))
		w.WriteHeader(status)
		return
	}
	desc := ocispec.Descriptor{Digest: d, Size: size}
	sv, err := b.OpenServed(desc)
	if err != nil {
		g.damaged(w, d, b.Path, err)
		return
	}
	defer sv.Close()
	if size <= smallBlob {
		g.sendSmall(w, sv, d, b.Path, start, end, status)
		return
	}
	if err := skip(sv, start); err != nil {
		g.damaged(w, d, b.Path, err)
		return
	}
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	if err := sendHeld(w, sv, end-start); err != nil {
		var we writeError
		if errors.As(err, &we) {
			return // the client went away
		}
		g.log.Error("blob damaged in the bundle: connection aborted, nothing wrong sent whole", "digest", d.String(), "bundle", b.Path, "err", err.Error())
		panic(http.ErrAbortHandler)
	}
}

// sendSmall reads a blob of one chunk whole, with its digest checked,
// before the first byte is sent.
func (g *registry) sendSmall(w http.ResponseWriter, sv *verify.Served, d digest.Digest, bundle string, start, end int64, status int) {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := (*bp)[:end]
	_, err := io.ReadFull(sv, buf)
	if err == nil {
		// The check happens at the end of the blob.
		_, err = io.Copy(io.Discard, sv)
	}
	if err == nil {
		err = sv.Confirm()
	}
	if err != nil {
		g.damaged(w, d, bundle, err)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	_, _ = w.Write(buf[start:end])
}

// skip moves sv to start. A hashing reader reads through to keep its hash
// whole; another seeks when it can: the zstd reader decodes only from the
// frame that holds start.
func skip(sv *verify.Served, start int64) error {
	if start == 0 {
		return nil
	}
	if s, ok := sv.ReadCloser.(io.Seeker); ok && !sv.Hashed {
		// From the current position, the entry's first byte: an archive's
		// reader may count offsets in the whole tar stream.
		_, err := s.Seek(start, io.SeekCurrent)
		return err
	}
	_, err := io.CopyN(io.Discard, sv, start)
	return err
}

// damaged answers a blob that cannot be read right, before anything was
// sent.
func (g *registry) damaged(w http.ResponseWriter, d digest.Digest, bundle string, err error) {
	g.log.Error("blob damaged in the bundle", "digest", d.String(), "bundle", bundle, "err", err.Error())
	ociError(w, http.StatusInternalServerError, codeUnknown,
		fmt.Sprintf("blob %s is damaged in the bundle on the server: copy the bundle again and check it with bundle verify", d))
}

type writeError struct{ error }

// sendHeld copies n bytes of sv to w, then reads sv to its end and has the
// digest confirmed, holding the last piece back until then.
func sendHeld(w io.Writer, sv *verify.Served, n int64) error {
	r := io.Reader(sv)
	b1, b2 := chunkPool.Get().(*[]byte), chunkPool.Get().(*[]byte)
	defer chunkPool.Put(b1)
	defer chunkPool.Put(b2)
	bufs := [2][]byte{*b1, *b2}
	var held []byte
	for i := 0; n > 0; i++ {
		buf := bufs[i%2][:min(int64(chunk), n)]
		k, err := io.ReadFull(r, buf)
		if err != nil {
			return err
		}
		if held != nil {
			if _, err := w.Write(held); err != nil {
				return writeError{err}
			}
		}
		held = buf[:k]
		n -= int64(k)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if err := sv.Confirm(); err != nil {
		return err
	}
	if _, err := w.Write(held); err != nil {
		return writeError{err}
	}
	return nil
}

// parseRange reads a single byte range (bytes=a-b, a-, -n) against size,
// returning [start, end). No header means the whole blob. Several ranges
// are answered with the whole blob, as RFC 9110 allows.
func parseRange(h string, size int64) (start, end int64, partial, ok bool) {
	if h == "" {
		return 0, size, false, true
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, false
		}
		return max(size-n, 0), size, true, size > 0
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 || s >= size {
			return 0, 0, false, false
		}
		e := size - 1
		if b != "" {
			if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
				return 0, 0, false, false
			}
			e = min(e, size-1)
		}
		return s, e + 1, true, true
	}
}

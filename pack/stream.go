package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/verify"
)

// openBlob gives the archive writer the bytes of n, checked against its
// digest exactly once on the way: from the cache through a verifying
// reader, or straight from the registry through the cache writer, whose
// commit is the check.
func (s *source) openBlob(ctx context.Context, n *Node, tr progress.Tracker, st *transferStats) (io.ReadCloser, error) {
	if s.cached(ctx, n.Desc.Digest) {
		if err := s.account(ctx, n, tr, st); err != nil {
			return nil, err
		}
		return s.fromCache(ctx, n, true)
	}
	bs, err := s.stream(ctx, n, tr)
	if errors.Is(err, errResumeIngest) {
		if err := s.account(ctx, n, tr, st); err != nil {
			return nil, err
		}
		// Partly fetched by an earlier run: check all of it again.
		return s.fromCache(ctx, n, true)
	}
	if err != nil {
		return nil, err
	}
	bs.st = st
	return bs, nil
}

// account runs ensure, which completes a partial ingest if need be, and
// counts what it did.
func (s *source) account(ctx context.Context, n *Node, tr progress.Tracker, st *transferStats) error {
	fetched, cached, err := s.ensure(ctx, n, tr)
	if err != nil {
		return fetchError(n, err)
	}
	st.fetched.Add(fetched)
	if cached {
		st.cached.Add(n.Desc.Size)
	}
	return nil
}

// fromCache reads n from the cache. Blobs committed by this run were hashed
// on their way in and are not hashed again; older ones are, since a disk
// can rot between runs.
func (s *source) fromCache(ctx context.Context, n *Node, check bool) (io.ReadCloser, error) {
	ra, err := s.store.ReaderAt(ctx, n.Desc)
	if err != nil {
		return nil, fmt.Errorf("reading %s from the cache: %w", n.Desc.Digest, err)
	}
	var r io.Reader = content.NewReader(ra)
	if check {
		r = verify.NewReader(r, n.Desc)
	}
	return readAtCloser{Reader: &ctxReader{ctx: ctx, r: r}, Closer: ra}, nil
}

// errResumeIngest says a partial ingest from an earlier run exists: its
// first bytes are only in the cache's ingest, so the blob is completed into
// the cache and read from there.
var errResumeIngest = errors.New("partial ingest to resume")

// stream opens n at the registry, copying into a new cache ingest as it is
// read.
func (s *source) stream(ctx context.Context, n *Node, tr progress.Tracker) (*blobStream, error) {
	f, err := s.fetcher(ctx, n.Repo)
	if err != nil {
		return nil, fetchError(n, err)
	}
	ref := ingestRef(n.Desc.Digest)
	cw, err := content.OpenWriter(ctx, s.store, content.WithRef(ref), content.WithDescriptor(n.Desc))
	if errdefs.IsAlreadyExists(err) {
		return nil, errResumeIngest // committed meanwhile by another process
	}
	if err != nil {
		return nil, fetchError(n, fmt.Errorf("opening cache entry: %w", err))
	}
	if st, err := cw.Status(); err != nil || st.Offset > 0 {
		cw.Close()
		return nil, errResumeIngest
	}
	id := n.Desc.Digest.String()
	tr.Start(id, describe(n), n.Desc.Size)
	return &blobStream{
		ctx: ctx, src: s, n: n, cw: cw, ref: ref, tr: tr, id: id,
		open: func(ctx context.Context) (io.ReadCloser, error) {
			return f.Fetch(ctx, graph.ForFetch(clean(n.Desc)))
		},
	}, nil
}

// blobStream is one blob on its way from the registry to the archive,
// copied into the cache ingest as it passes, so that a rerun finds it
// there. The ingest writer hashes what passes and its commit at the end is
// the digest check: a mismatch turns the end of the stream into an error,
// and the archive writer never sees io.EOF for a damaged blob. A transient
// failure in the middle of the body resumes with a range request at the
// offset reached, since the bytes before it are already in the archive.
type blobStream struct {
	ctx  context.Context
	src  *source
	n    *Node
	cw   content.Writer
	ref  string
	tr   progress.Tracker
	id   string
	st   *transferStats
	open func(context.Context) (io.ReadCloser, error)

	rc       io.ReadCloser
	off      int64
	attempts int
	backoff  time.Duration
	done     bool
	bad      bool // the ingest holds wrong bytes: drop it
	err      error
}

func (b *blobStream) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	n, err := b.read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *blobStream) read(p []byte) (int, error) {
	for {
		if err := b.ctx.Err(); err != nil {
			return 0, err
		}
		if b.rc == nil {
			if err := b.reopen(); err != nil {
				if b.retryable(err) {
					continue
				}
				return 0, fetchError(b.n, err)
			}
		}
		n, err := b.rc.Read(p)
		if n > 0 {
			if werr := b.take(p[:n]); werr != nil {
				return 0, werr
			}
		}
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF && n > 0:
			return n, nil
		case err == io.EOF:
			return 0, b.finish()
		}
		b.rc.Close()
		b.rc = nil
		if !b.retryable(err) {
			return n, fetchError(b.n, err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// reopen fetches the blob again, from the offset already passed on.
func (b *blobStream) reopen() error {
	rc, err := b.open(b.ctx)
	if err != nil {
		return err
	}
	if b.off > 0 {
		sk, ok := rc.(io.Seeker)
		if !ok {
			rc.Close()
			return fmt.Errorf("the body broke after %d bytes and the registry client cannot resume it", b.off)
		}
		if _, err := sk.Seek(b.off, io.SeekStart); err != nil {
			rc.Close()
			return err
		}
	}
	b.rc = rc
	return nil
}

// retryable waits out a backoff and says yes while err is transient and
// attempts remain.
func (b *blobStream) retryable(err error) bool {
	if !transient(err) || b.attempts >= b.src.maxRetries {
		return false
	}
	b.attempts++
	if b.backoff == 0 {
		b.backoff = b.src.minBackoff
	}
	t := time.NewTimer(b.backoff)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return false
	case <-t.C:
	}
	b.backoff = min(b.backoff*2, 10*time.Second)
	return true
}

// take passes bytes to the ingest, refusing more than the descriptor's size.
func (b *blobStream) take(p []byte) error {
	if b.off+int64(len(p)) > b.n.Desc.Size {
		b.bad = true
		return fetchError(b.n, &verify.MismatchError{Digest: b.n.Desc.Digest, Size: b.n.Desc.Size, GotSize: b.off + int64(len(p))})
	}
	if _, err := b.cw.Write(p); err != nil {
		return fmt.Errorf("caching %s %s: %w: check the space left under the cache directory", b.n.Role, b.n.Desc.Digest, err)
	}
	b.off += int64(len(p))
	b.tr.Add(b.id, int64(len(p)))
	if b.st != nil {
		b.st.fetched.Add(int64(len(p)))
	}
	return nil
}

// finish commits the ingest, which checks the size and digest.
func (b *blobStream) finish() error {
	err := b.cw.Commit(b.ctx, b.n.Desc.Size, b.n.Desc.Digest)
	switch {
	case err == nil, errdefs.IsAlreadyExists(err):
		b.done = true
		return io.EOF
	case errdefs.IsFailedPrecondition(err):
		b.bad = true
		return fetchError(b.n, fmt.Errorf("%w: %w", verify.ErrMismatch, err))
	}
	return fmt.Errorf("caching %s %s: %w", b.n.Role, b.n.Desc.Digest, err)
}

// Close ends the fetch. An unfinished ingest is kept for a rerun to resume,
// unless its bytes are known to be wrong.
func (b *blobStream) Close() error {
	if b.rc != nil {
		b.rc.Close()
		b.rc = nil
	}
	if !b.done {
		b.cw.Close()
		if b.bad {
			_ = b.src.store.Abort(context.WithoutCancel(b.ctx), b.ref)
		}
	}
	err := b.err
	if !b.done && err == nil {
		err = errors.New("stream closed before its end")
	}
	b.tr.Done(b.id, false, err)
	return nil
}

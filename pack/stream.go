package pack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/verify"
)

// openBlob gives the archive writer the bytes of n, checked against its
// digest exactly once on the way: from the cache, or straight from the
// registry, copied into the cache on the way when keep says so.
func (s *source) openBlob(ctx context.Context, n *Node, tr progress.Tracker, st *transferStats, keep bool) (io.ReadCloser, error) {
	if data, ok := s.takePlanned(n.Desc.Digest); ok {
		// Fetched and verified while planning.
		return fetchedEarly(n, tr, st, bytes.NewReader(data)), nil
	}
	if r, ok, err := s.spool.take(n.Desc.Digest); ok {
		if err != nil {
			return nil, fetchError(n, err)
		}
		// Fetched and verified while planning went on.
		return fetchedEarly(n, tr, st, &ctxReader{ctx: ctx, r: r}), nil
	}
	if s.cached(ctx, n.Desc.Digest) {
		if err := s.account(ctx, n, tr, st); err != nil {
			return nil, err
		}
		return s.fromCache(ctx, n, true)
	}
	bs, err := s.stream(ctx, n, tr, st, keep)
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
	return bs, nil
}

// fetchedEarly counts a blob fetched before the writer got to it.
func fetchedEarly(n *Node, tr progress.Tracker, st *transferStats, r io.Reader) io.ReadCloser {
	id := n.Desc.Digest.String()
	tr.Start(id, describe(n), n.Desc.Size)
	tr.Add(id, n.Desc.Size)
	tr.Done(id, false, nil)
	st.fetched.Add(n.Desc.Size)
	return io.NopCloser(r)
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

// stream opens n at the registry for the archive writer. The bytes go
// straight into the archive, not through the cache: writing them twice was
// the largest cost of an export. What a failed run had written is put into
// the cache afterwards (salvage), so a rerun still fetches nothing twice.
//
// With keep, the bytes are also copied into a cache ingest, committed once
// the whole blob has passed: the writer is then waiting on the network, so
// the second write costs nothing that shows, and a later export of the same
// images over the same slow link finds the blob in the cache. Keeping is
// best effort: a cache that fails only stops the copy.
func (s *source) stream(ctx context.Context, n *Node, tr progress.Tracker, st *transferStats, keep bool) (io.ReadCloser, error) {
	f, err := s.fetcher(ctx, n.Repo)
	if err != nil {
		return nil, fetchError(n, err)
	}
	if st, err := s.store.Status(ctx, ingestRef(n.Desc.Digest)); err == nil && st.Offset > 0 {
		return nil, errResumeIngest
	}
	id := n.Desc.Digest.String()
	tr.Start(id, describe(n), n.Desc.Size)
	ctx, attempts := s.policy.Attempts(ctx)
	b := &blobStream{
		ctx: ctx, src: s, n: n, tr: tr, id: id, st: st, attempts: attempts,
		open: func(ctx context.Context) (io.ReadCloser, error) {
			return f.Fetch(ctx, graph.ForFetch(clean(n.Desc)))
		},
	}
	if keep {
		cw, err := content.OpenWriter(ctx, s.store, content.WithRef(ingestRef(n.Desc.Digest)), content.WithDescriptor(n.Desc))
		if err == nil {
			b.keep = cw
		}
	}
	return &verifiedStream{Reader: verify.NewReader(b, n.Desc), b: b}, nil
}

// verifiedStream is a blobStream behind the reader that checks its digest:
// the archive writer never sees io.EOF for a damaged blob.
type verifiedStream struct {
	io.Reader
	b *blobStream
}

func (v *verifiedStream) Read(p []byte) (int, error) {
	n, err := v.Reader.Read(p)
	switch {
	case err == io.EOF:
		v.b.verified = true
		v.b.commit()
	case errors.Is(err, verify.ErrMismatch):
		err = fetchError(v.b.n, err)
		v.b.err = err
	}
	return n, err
}

func (v *verifiedStream) Close() error { return v.b.Close() }

// blobStream is one blob on its way from the registry to the archive. A
// transient failure in the middle of the body resumes with a range request
// at the offset reached, since the bytes before it are already in the
// archive. Its attempts are the blob's budget under the one policy, which
// its requests draw from too (ctx carries it): the transport's retries of
// a GET and the resumptions here are one count, renewed by progress.
type blobStream struct {
	ctx      context.Context
	src      *source
	n        *Node
	tr       progress.Tracker
	id       string
	st       *transferStats
	open     func(context.Context) (io.ReadCloser, error)
	attempts *remote.Attempts

	keep     content.Writer // the cache ingest the bytes are copied into, if any
	rc       io.ReadCloser
	off      int64
	verified bool
	err      error
}

func (b *blobStream) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
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
				if err = b.attempts.Retry(b.ctx, err); err == nil {
					continue
				}
				return 0, fetchError(b.n, err)
			}
		}
		n, err := b.rc.Read(p)
		b.took(p, n)
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF:
			return n, io.EOF
		}
		b.rc.Close()
		b.rc = nil
		if err = b.attempts.Retry(b.ctx, err); err != nil {
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

func (b *blobStream) took(p []byte, n int) {
	if n <= 0 {
		return
	}
	b.off += int64(n)
	b.attempts.Progress()
	b.tr.Add(b.id, int64(n))
	if b.keep != nil {
		if _, err := b.keep.Write(p[:n]); err != nil {
			b.dropKeep()
		}
	}
	if b.st != nil {
		b.st.fetched.Add(int64(n))
	}
}

// commit puts the kept copy into the cache; the store checks the digest
// again, which the verifying reader has just done.
func (b *blobStream) commit() {
	if b.keep == nil {
		return
	}
	if err := b.keep.Commit(b.ctx, b.n.Desc.Size, b.n.Desc.Digest); err != nil && !errdefs.IsAlreadyExists(err) {
		b.dropKeep()
		return
	}
	b.keep.Close()
	b.keep = nil
}

// dropKeep gives up the cache copy and its ingest: half a copy of bytes
// nobody checked is not worth resuming from.
func (b *blobStream) dropKeep() {
	b.keep.Close()
	b.keep = nil
	_ = b.src.store.Abort(context.WithoutCancel(b.ctx), ingestRef(b.n.Desc.Digest))
}

// Close ends the fetch.
func (b *blobStream) Close() error {
	if b.rc != nil {
		b.rc.Close()
		b.rc = nil
	}
	if b.keep != nil {
		b.dropKeep()
	}
	err := b.err
	if !b.verified && err == nil {
		err = errors.New("stream closed before its end")
	}
	b.tr.Done(b.id, false, err)
	return nil
}

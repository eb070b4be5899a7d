package pack

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/verify"
)

// source fetches from registries into the content cache: a containerd
// local store, which verifies size and digest on commit and keeps partial
// ingests so that an interrupted fetch resumes. Requests retry under the
// one policy of internal/remote; a blob whose body breaks resumes from the
// bytes already verified, drawing its attempts from the same budget.
type source struct {
	resolver remotes.Resolver
	client   *remote.Client
	store    content.Store
	policy   remote.Policy

	mu       sync.Mutex
	fetchers map[string]remotes.Fetcher
	// planned holds the manifests fetched from a registry while planning,
	// verified, until the archive writer takes them: creating a cache
	// entry per manifest cost more than the bytes (measured: a fifth of
	// the CPU of a 200 MiB export). A failed run's salvage still puts them
	// in the cache from its partial archive.
	planned map[digest.Digest][]byte
	// handed holds manifests the referrer finder already read and verified,
	// until the walk asks for them: small, and gone once walked.
	handed map[digest.Digest][]byte
	// spool holds the small blobs fetched while planning; nil for a dry run.
	spool *spool
}

func newSource(resolver remotes.Resolver, client *remote.Client, store content.Store, policy remote.Policy) *source {
	return &source{
		resolver: resolver,
		client:   client,
		store:    store,
		policy:   policy,
		fetchers: map[string]remotes.Fetcher{},
		planned:  map[digest.Digest][]byte{},
		handed:   map[digest.Digest][]byte{},
	}
}

func (s *source) fetcher(ctx context.Context, repo string) (remotes.Fetcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.fetchers[repo]; ok {
		return f, nil
	}
	f, err := s.resolver.Fetcher(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo, err)
	}
	s.fetchers[repo] = f
	return f, nil
}

// cached reports whether the store holds d, verified.
func (s *source) cached(ctx context.Context, d digest.Digest) bool {
	_, err := s.store.Info(ctx, d)
	return err == nil
}

// takePlanned hands over, once, a manifest fetched while planning.
func (s *source) takePlanned(d digest.Digest) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.planned[d]
	delete(s.planned, d)
	return data, ok
}

func (s *source) isPlanned(d digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.planned[d]
	return ok
}

// manifest returns the bytes of a manifest or index, verified: from the
// cache, or from the registry, held for the archive writer.
func (s *source) manifest(ctx context.Context, repo string, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > graph.MaxManifestSize {
		return nil, fmt.Errorf("%s is %d bytes: %w", desc.Digest, desc.Size, graph.ErrTooLarge)
	}
	if s.cached(ctx, desc.Digest) {
		return content.ReadBlob(ctx, s.store, desc)
	}
	s.mu.Lock()
	data, ok := s.planned[desc.Digest]
	if !ok {
		data, ok = s.handed[desc.Digest]
		delete(s.handed, desc.Digest)
	}
	s.mu.Unlock()
	if !ok {
		if err := s.fetchWhole(ctx, repo, desc, &data); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.planned[desc.Digest] = data
	s.mu.Unlock()
	return data, nil
}

// handOver keeps a manifest the referrer finder read (and verified) for the
// walk, which would otherwise fetch it again.
func (s *source) handOver(desc ocispec.Descriptor, data []byte) {
	if desc.Size > graph.MaxManifestSize || int64(len(data)) != desc.Size {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.planned[desc.Digest]; !ok {
		s.handed[desc.Digest] = data
	}
}

// dropHanded forgets what the walk did not ask for (referrers filtered out).
func (s *source) dropHanded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.handed)
}

// fetchWhole reads a small object whole, verified, into data: a manifest,
// a config read to learn a platform, a small blob fetched early.
func (s *source) fetchWhole(ctx context.Context, repo string, desc ocispec.Descriptor, data *[]byte) error {
	f, err := s.fetcher(ctx, repo)
	if err != nil {
		return err
	}
	// A manifest's answer is read whole by the transport, which retries
	// it; a config read this way (to learn a platform) is a blob, whose
	// body can break after its headers: the read is retried as a unit,
	// from the same budget.
	return s.policy.Run(ctx, func(ctx context.Context) error {
		rc, err := f.Fetch(ctx, graph.ForFetch(clean(desc)))
		if err != nil {
			return err
		}
		defer rc.Close()
		*data, err = graph.ReadAll(verify.NewReader(rc, desc))
		return err
	})
}

// ensure makes n present and verified in the cache. It returns the bytes
// read from the registry, and whether the blob was already there.
func (s *source) ensure(ctx context.Context, n *Node, tr progress.Tracker) (fetched int64, cached bool, err error) {
	id := n.Desc.Digest.String()
	if s.cached(ctx, n.Desc.Digest) {
		tr.Start(id, describe(n), n.Desc.Size)
		tr.Done(id, true, nil)
		return 0, true, nil
	}
	tr.Start(id, describe(n), n.Desc.Size)
	// Each attempt resumes the cache's partial ingest where the last one
	// broke off; verified bytes are progress, which renews the budget.
	ctx, attempts := s.policy.Attempts(ctx)
	var total int64
	add := func(k int64) {
		total += k
		tr.Add(id, k)
		attempts.Progress()
	}
	for {
		if err = s.fetchOnce(ctx, n, add); err == nil {
			break
		}
		if err = attempts.Retry(ctx, err); err != nil {
			break
		}
	}
	tr.Done(id, false, err)
	return total, false, err
}

func (s *source) fetchOnce(ctx context.Context, n *Node, add func(int64)) error {
	f, err := s.fetcher(ctx, n.Repo)
	if err != nil {
		return err
	}
	ref := ingestRef(n.Desc.Digest)
	w, err := content.OpenWriter(ctx, s.store, content.WithRef(ref), content.WithDescriptor(n.Desc))
	if errdefs.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening cache entry: %w", err)
	}
	defer w.Close()
	rc, err := f.Fetch(ctx, graph.ForFetch(clean(n.Desc)))
	if err != nil {
		return err
	}
	defer rc.Close()
	err = content.Copy(ctx, w, counting(rc, add), n.Desc.Size, n.Desc.Digest)
	if errdefs.IsFailedPrecondition(err) {
		// The bytes on disk are wrong: drop them, or a resume would build
		// on them forever.
		_ = s.store.Abort(context.WithoutCancel(ctx), ref)
		return fmt.Errorf("%w: %w", verify.ErrMismatch, err)
	}
	return err
}

// ingestRef names the cache's partial ingest of d: one per digest, so a
// rerun finds and resumes it.
func ingestRef(d digest.Digest) string { return "bundle-" + d.String() }

func describe(n *Node) string {
	enc := n.Desc.Digest.Encoded()
	return fmt.Sprintf("%s %s", n.Role, enc[:min(12, len(enc))])
}

// counting reports bytes read, and keeps Seek visible so that content.Copy
// resumes a partial ingest with a range request instead of reading again.
func counting(r io.Reader, add func(int64)) io.Reader {
	c := &counter{r: r, add: add}
	if s, ok := r.(io.Seeker); ok {
		return &seekCounter{counter: c, s: s}
	}
	return c
}

type counter struct {
	r   io.Reader
	add func(int64)
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}

type seekCounter struct {
	*counter
	s io.Seeker
}

func (c *seekCounter) Seek(off int64, whence int) (int64, error) { return c.s.Seek(off, whence) }

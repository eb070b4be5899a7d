package pack

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"
)

// spoolLimit bounds what the spool holds: past it, blobs wait for the
// finished plan and go straight into the archive as before.
const spoolLimit = 1 << 30

// early fetches the small blobs the walk reaches while the rest of the plan
// is still being made. An archive begins with index.json and every
// manifest, which only the finished plan gives, so an export of thousands
// of small images used to fetch nothing for most of its first half. Now
// each blob goes, verified, into a spool file beside the output as soon
// as the walk reaches it, and the archive writer copies it in from there.
//
// Only small blobs come early: a small blob costs a round trip, which is
// what a long plan leaves idle; a large one costs bandwidth, and spooling
// it would write its bytes twice. Early fetches take the same request
// slots as the walk, so --concurrency still bounds what is in flight. A
// blob whose early fetch uses up its attempts is not tried again: the
// writer reports that failure, naming the references that need it (one
// budget per blob, as everywhere).
type early struct {
	src     *source
	sp      *spool
	limiter *semaphore.Weighted
	held    map[digest.Digest]map[string]bool // what --since leaves out

	mu     sync.Mutex
	queue  []earlyBlob
	queued map[digest.Digest]bool
	closed bool
	kick   chan struct{}
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

type earlyBlob struct {
	repo string
	desc ocispec.Descriptor
}

// startEarly makes the spool beside opts.Output and starts the workers
// that fill it; held is what --since leaves out. close ends both.
func startEarly(ctx context.Context, src *source, opts Options, limiter *semaphore.Weighted, first *firstWrite, held map[digest.Digest]map[string]bool) (*early, error) {
	sp, err := newSpool(filepath.Dir(opts.Output), spoolLimit, first)
	if err != nil {
		return nil, err
	}
	src.spool = sp
	ctx, cancel := context.WithCancel(ctx)
	e := &early{
		src: src, sp: sp, limiter: limiter,
		held:   held,
		queued: map[digest.Digest]bool{},
		kick:   make(chan struct{}, 1),
		cancel: cancel,
	}
	for range opts.Concurrency {
		e.wg.Add(1)
		go e.work(ctx)
	}
	return e, nil
}

// hook is what the walk calls for each blob it keeps; nil without e.
func (e *early) hook() func(string, ocispec.Descriptor) {
	if e == nil {
		return nil
	}
	return e.found
}

// found is the walk telling that repo's blob desc belongs to the export.
func (e *early) found(repo string, desc ocispec.Descriptor) {
	if desc.Size <= 0 || desc.Size > prefetchSmall || e.held[desc.Digest] != nil {
		return
	}
	e.mu.Lock()
	if e.closed || e.queued[desc.Digest] {
		e.mu.Unlock()
		return
	}
	e.queued[desc.Digest] = true
	e.queue = append(e.queue, earlyBlob{repo: repo, desc: clean(desc)})
	e.mu.Unlock()
	e.wake()
}

func (e *early) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// next waits for a blob to fetch; false once stopped.
func (e *early) next(ctx context.Context) (earlyBlob, bool) {
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			e.wake() // the next worker parked on the kick leaves too
			return earlyBlob{}, false
		}
		if len(e.queue) > 0 {
			b := e.queue[0]
			e.queue[0] = earlyBlob{}
			e.queue = e.queue[1:]
			more := len(e.queue) > 0
			e.mu.Unlock()
			if more {
				e.wake() // another worker may be waiting
			}
			return b, true
		}
		e.mu.Unlock()
		select {
		case <-e.kick:
		case <-ctx.Done():
			return earlyBlob{}, false
		}
	}
}

func (e *early) work(ctx context.Context) {
	defer e.wg.Done()
	for {
		b, ok := e.next(ctx)
		if !ok {
			return
		}
		if e.src.isPlanned(b.desc.Digest) || e.src.cached(ctx, b.desc.Digest) {
			continue
		}
		if !e.sp.room(b.desc.Size) {
			continue
		}
		if err := e.limiter.Acquire(ctx, 1); err != nil {
			return
		}
		if e.isClosed() { // the plan was made while this waited for a slot
			e.limiter.Release(1)
			return
		}
		var data []byte
		err := e.src.fetchWhole(ctx, b.repo, b.desc, &data)
		e.limiter.Release(1)
		switch {
		case err == nil:
			_ = e.sp.put(b.desc, data) // a spool that fails leaves the blob to the writer
		case ctx.Err() == nil:
			// The budget is spent: the writer reports it, naming the
			// references that need the blob, rather than spend another.
			e.sp.fail(b.desc.Digest, err)
		}
	}
}

// stop ends early fetching once the plan is made: what is queued is left
// to the writer, a fetch in flight is finished. The spool stays.
func (e *early) stop() {
	if e == nil {
		return
	}
	e.mu.Lock()
	already := e.closed
	e.closed = true
	e.queue = nil
	e.mu.Unlock()
	if already {
		return
	}
	e.wake()
	e.wg.Wait()
	e.cancel()
}

// close stops early fetching, if need be, and closes the spool.
func (e *early) close() {
	if e == nil {
		return
	}
	e.stop()
	e.sp.Close()
}

func (e *early) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// spool holds blobs fetched before the archive could take them, in one
// file beside the output, unlinked as soon as it is made: nothing is left
// behind whatever way the export ends.
type spool struct {
	f     *os.File
	limit int64
	first *firstWrite

	mu     sync.Mutex
	end    int64
	at     map[digest.Digest]span
	failed map[digest.Digest]error
}

type span struct{ off, size int64 }

func newSpool(dir string, limit int64, first *firstWrite) (*spool, error) {
	f, err := os.CreateTemp(dir, ".bundle-spool-*")
	if err != nil {
		return nil, fmt.Errorf("creating a spool file in %s: %w", dir, err)
	}
	// Unlinked while open: the file goes when the export does, even on a
	// crash. Where that cannot be done, Close removes it.
	_ = os.Remove(f.Name())
	return &spool{f: f, limit: limit, first: first, at: map[digest.Digest]span{}, failed: map[digest.Digest]error{}}, nil
}

// room reports whether n more bytes fit under the limit.
func (s *spool) room(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end+n <= s.limit
}

// put writes a verified blob and makes it available to take.
func (s *spool) put(desc ocispec.Descriptor, data []byte) error {
	s.mu.Lock()
	off := s.end
	s.end += int64(len(data))
	s.mu.Unlock()
	if _, err := s.f.WriteAt(data, off); err != nil {
		return err
	}
	s.first.mark()
	s.mu.Lock()
	s.at[desc.Digest] = span{off: off, size: int64(len(data))}
	s.mu.Unlock()
	return nil
}

// fail records that fetching d early used up its attempts.
func (s *spool) fail(d digest.Digest, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[d] = err
}

// has reports whether d came early, or failed to.
func (s *spool) has(d digest.Digest) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.at[d]
	_, failed := s.failed[d]
	return ok || failed
}

// take hands over, once, a spooled blob or the failure of its fetch. The
// blob was verified on its way in and written by this run: it is not
// hashed again, as with the cache.
func (s *spool) take(d digest.Digest) (io.Reader, bool, error) {
	if s == nil {
		return nil, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ok := s.failed[d]; ok {
		delete(s.failed, d)
		return nil, true, err
	}
	sp, ok := s.at[d]
	if !ok {
		return nil, false, nil
	}
	delete(s.at, d)
	return io.NewSectionReader(s.f, sp.off, sp.size), true, nil
}

// keep hands what was never taken to put, for a rerun after a failed
// export not to fetch it again; it stops at put's first failure.
func (s *spool) keep(ctx context.Context, put func(context.Context, digest.Digest, int64, io.Reader) error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	left := s.at
	s.at = map[digest.Digest]span{}
	s.mu.Unlock()
	for d, sp := range left {
		if err := put(ctx, d, sp.size, io.NewSectionReader(s.f, sp.off, sp.size)); err != nil && !errdefs.IsAlreadyExists(err) {
			return
		}
	}
}

func (s *spool) Close() error {
	if s == nil {
		return nil
	}
	err := s.f.Close()
	os.Remove(s.f.Name()) // already gone where unlinking an open file works
	return err
}

// firstWrite is when the export first put a blob on disk, spool or archive.
type firstWrite struct {
	start time.Time
	at    atomic.Int64 // nanoseconds after start; 0 until then
}

func (f *firstWrite) mark() {
	f.at.CompareAndSwap(0, max(1, int64(time.Since(f.start))))
}

func (f *firstWrite) after() time.Duration { return time.Duration(f.at.Load()) }

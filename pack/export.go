package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/verify"
)

// Export resolves refs, plans, fetches and writes the archive opts.Output.
func Export(ctx context.Context, refs []string, opts Options) (*Report, error) {
	start := time.Now()
	opts, comp, err := withDefaults(refs, opts)
	if err != nil {
		return nil, err
	}
	m, err := newMedia(opts)
	if err != nil {
		return nil, err
	}
	store, err := local.NewStore(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("opening the content cache %s: %w: choose another with --cache", opts.CacheDir, err)
	}
	resolver, client := opts.Remote.Connect(ctx)
	src := newSource(resolver, client, store, opts.Remote.Policy())

	// The bases are read first: what they hold is not fetched early.
	var ids []string
	var held map[digest.Digest]map[string]bool
	if len(opts.Since) > 0 {
		if ids, held, err = loadBases(ctx, opts.Since); err != nil {
			return nil, err
		}
	}
	first := &firstWrite{start: start}
	limiter := semaphore.NewWeighted(int64(opts.Concurrency))
	var ahead *early
	if !opts.DryRun {
		if ahead, err = startEarly(ctx, src, opts, limiter, first, held); err != nil {
			return nil, err
		}
		defer ahead.close()
	}
	plan, err := makePlan(ctx, src, refs, opts, limiter, ahead.hook())
	ahead.stop()
	if err != nil {
		return nil, err
	}
	planning := time.Since(start)
	var lo *leftOut
	if len(opts.Since) > 0 {
		plan, lo = cut(plan, ids, held)
	}
	sum := summarize(ctx, src, plan, lo)
	if opts.OnPlan != nil {
		opts.OnPlan(&sum)
	}
	if opts.DryRun {
		return &Report{Plan: sum, DryRun: true, Images: sum.Images, Duration: time.Since(start)}, nil
	}
	index, err := buildIndex(plan, lo)
	if err != nil {
		return nil, err
	}
	if err := m.plan(plan); err != nil {
		return nil, err
	}
	st, res, err := transfer(ctx, src, plan, index, comp, m, first, opts)
	if err != nil {
		// What came early is kept for a rerun, as the archive's blobs are.
		src.spool.keep(context.WithoutCancel(ctx), src.keepBlob)
		return nil, err
	}
	rep := report(plan, st, res, comp, opts.Output)
	rep.Plan = sum
	rep.Planning, rep.FirstWrite = planning, first.after()
	// What --since left out is no dedup saving.
	rep.BytesDeduped = max(rep.BytesDeduped-sum.BytesLeftOut, 0)
	rep.Duration = time.Since(start)
	return rep, nil
}

func withDefaults(refs []string, opts Options) (Options, layout.Compression, error) {
	if len(refs) == 0 && len(opts.Images) == 0 {
		return opts, "", errors.New("nothing to export: name at least one image reference")
	}
	if len(refs) > graph.MaxIndexEntries {
		return opts, "", fmt.Errorf("%d references: a bundle's index.json lists at most %d entries; export them in several bundles", len(refs), graph.MaxIndexEntries)
	}
	if opts.Output == "" {
		return opts, "", errors.New("no output file: give one with --output")
	}
	comp, err := layout.CompressionFor(opts.Output, opts.Compression)
	if err != nil {
		return opts, "", err
	}
	if err := checkOutput(opts.Output, opts.Force); err != nil && !opts.DryRun {
		return opts, "", err
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.CacheDir == "" {
		if opts.CacheDir, err = CacheDir(); err != nil {
			return opts, "", err
		}
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard{}
	}
	return opts, comp, nil
}

// checkOutput refuses, before any request, an output that would clobber a
// file (unless force), that is a directory, or whose directory cannot be
// written: finding out after an hour of downloads helps nobody.
func checkOutput(out string, force bool) error {
	if fi, err := os.Stat(out); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("output %s is a directory: give a file name, such as %s", out, filepath.Join(out, "bundle.tar.zst"))
		}
		if !force {
			return fmt.Errorf("output %s exists: pass --force to replace it (and its .sha256), or choose another name", out)
		}
	}
	dir := filepath.Dir(out)
	probe, err := os.CreateTemp(dir, ".bundle-write-check-*")
	if err != nil {
		return fmt.Errorf("cannot write into %s (%w): check that the directory exists and is writable", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// makePlan resolves every reference and walks its graph.
// The walk takes its request slots from limiter; found, if set, is told of
// each blob it keeps as soon as it meets it.
func makePlan(ctx context.Context, src *source, refs []string, opts Options, limiter *semaphore.Weighted, found func(string, ocispec.Descriptor)) (*Plan, error) {
	tgts, sels, err := targets(ctx, src, refs, opts)
	if err != nil {
		return nil, err
	}
	if len(tgts) > graph.MaxIndexEntries {
		return nil, fmt.Errorf("%d references: a bundle's index.json lists at most %d entries; export them in several bundles", len(tgts), graph.MaxIndexEntries)
	}
	g := newDiscovery(src, limiter, opts.Notice)
	g.found = found
	// Each reference is resolved and walked in one go, so that the first
	// blobs are found (and fetched early) within seconds however many
	// references there are. Resolving takes a request slot like the walk.
	// At most Concurrency references at a time: one goroutine per
	// reference at once made thousands of stacks for the collector to scan
	// while they all waited on the same request limit. The assembly
	// afterwards is sequential in the order given, which is what decides
	// where a shared blob is fetched from.
	resolved := make([]root, len(tgts))
	errs := make([]error, len(tgts))
	wg, wctx := errgroup.WithContext(ctx)
	wg.SetLimit(opts.Concurrency)
	for i, t := range tgts {
		wg.Go(func() error {
			if errs[i] = limiter.Acquire(wctx, 1); errs[i] != nil {
				return errs[i]
			}
			rt, err := resolve(wctx, src, t.ref)
			limiter.Release(1)
			if err == nil {
				rt.w = t.w
				resolved[i] = rt
				err = g.walk(wctx, rt)
			}
			errs[i] = err
			return err
		})
	}
	_ = wg.Wait()
	// A failure is reported for the first failing reference in the order
	// given.
	if err := firstError(ctx, errs); err != nil {
		return nil, err
	}
	var roots []root
	given := map[string]bool{}
	for _, rt := range resolved {
		if !given[rt.ref] {
			given[rt.ref] = true
			roots = append(roots, rt)
		}
	}
	src.dropHanded()
	if roots, err = keepMatching(g, roots, opts); err != nil {
		return nil, err
	}
	plan, err := assemble(g, roots)
	if err != nil {
		return nil, err
	}
	plan.Selections = sels
	return plan, checkArtifactTypes(plan, opts)
}

// firstError is the first real failure in errs, in order: a walk cancelled
// because another failed is not one, unless ctx itself was cancelled.
func firstError(ctx context.Context, errs []error) error {
	var cancelled error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled) && ctx.Err() == nil:
			if cancelled == nil {
				cancelled = err
			}
		default:
			return err
		}
	}
	return cancelled
}

func platformMatcher(specs []string) (platforms.Matcher, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	ps := make([]ocispec.Platform, 0, len(specs))
	for _, s := range specs {
		p, err := platforms.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w: use OS/ARCH[/VARIANT], for example linux/arm64", s, err)
		}
		ps = append(ps, p)
	}
	return platforms.Any(ps...), nil
}

// resolve normalises ref (no host means docker.io) and resolves it to a
// manifest or index descriptor.
func resolve(ctx context.Context, src *source, ref string) (root, error) {
	host, repo, tag, dgst, err := remote.SplitReference(ref)
	if err != nil {
		return root{}, fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	name := host + "/" + repo
	full := name
	if tag != "" {
		full += ":" + tag
	}
	if dgst != "" {
		full += "@" + fmt.Sprint(dgst)
	}
	if tag == "" && dgst == "" {
		full += ":latest"
	}
	_, desc, err := src.resolver.Resolve(ctx, full)
	if err != nil {
		return root{}, remote.Explain(err, full)
	}
	if graph.IsSchema1(desc.MediaType) {
		return root{}, fmt.Errorf("%s: %w", full, graph.ErrSchema1)
	}
	if !graph.IsManifest(desc.MediaType) {
		return root{}, fmt.Errorf("%s is a %q, not an image manifest or index: bundle cannot export it", full, desc.MediaType)
	}
	return root{ref: full, repo: name, desc: clean(desc)}, nil
}

type transferStats struct {
	fetched, cached atomic.Int64
}

// transfer fetches and writes the archive at the same time. The writer goes
// through the blobs in archive order and streams each one straight from the
// registry into the archive. The other fetchers take the small blobs, whose
// cost is a round trip each, and, while the writer waits on the network
// rather than on the disk, large blobs from the far end of the order into
// the cache, for the writer to read from there when it gets to them. Each
// blob is claimed once, by whoever gets to it first, and fetched once.
func transfer(ctx context.Context, src *source, plan *Plan, index []byte, comp layout.Compression, m *media, first *firstWrite, opts Options) (*transferStats, archiveResult, error) {
	order := plan.WriteOrder()
	claims := make([]atomic.Bool, len(order))
	ready := make([]chan struct{}, len(order))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	st := &transferStats{}
	pace := newPacer()
	g, gctx := errgroup.WithContext(ctx)
	for range opts.Concurrency - 1 {
		g.Go(func() error { return prefetch(gctx, src, order, claims, ready, pace, st, opts) })
	}

	var res archiveResult
	g.Go(func() error {
		defer pace.finish()
		gauge := newGauge(pace, time.Now)
		open := func(ctx context.Context, i int, n *Node) (io.ReadCloser, error) {
			first.mark()
			// Small blobs cost round trips, whoever fetches them: only the
			// time spent on large ones tells whether the writer is starved.
			timed := n.Desc.Size > prefetchSmall
			if claims[i].CompareAndSwap(false, true) {
				rc, err := src.openBlob(ctx, n, opts.Progress, st, pace.isStarved())
				if err != nil || !timed {
					return rc, err
				}
				return &timedReader{ReadCloser: rc, g: gauge}, nil
			}
			if timed {
				gauge.wait()
			}
			select {
			case <-ready[i]:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if timed {
				gauge.done(0)
			}
			// A prefetcher put it there in this run and hashed it on the way.
			return src.fromCache(ctx, n, false)
		}
		salvage := func(partial string) {
			if fi, err := os.Stat(partial); err == nil && fi.Size() > salvageQuietly && opts.Notice != nil {
				hint := ""
				if ctx.Err() != nil { // interrupted: a second signal stops this too
					hint = "; a second Ctrl-C skips this"
				}
				opts.Notice("keeping the blobs of %s (%d bytes) for a rerun%s", partial, fi.Size(), hint)
			}
			blobs, bytes, _ := src.salvage(context.WithoutCancel(ctx), partial)
			if blobs > 0 && opts.Notice != nil {
				opts.Notice("kept %d blobs (%d bytes) already written in the cache %s: run the same command again to resume", blobs, bytes, opts.CacheDir)
			}
		}
		var err error
		res, err = writeArchive(gctx, m, opts.Output, comp, index, order, open, salvage)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, res, err
	}
	return st, res, nil
}

// salvageQuietly is the size of a partial archive below which keeping its
// blobs is too quick to announce.
const salvageQuietly = 64 << 20

// prefetchSmall is the size up to which prefetchers take every blob: below
// it a fetch costs a round trip rather than bandwidth, so fetching them side
// by side always pays, and writing them twice costs little.
const prefetchSmall = 1 << 20

// prefetch fills the cache: the small blobs from the front of the order,
// then large ones from the end backwards, only while the writer is starved,
// until it meets the writer.
func prefetch(ctx context.Context, src *source, order []*Node, claims []atomic.Bool, ready []chan struct{}, pace *pacer, st *transferStats, opts Options) error {
	take := func(i int) error {
		// What planning holds is the writer's, and so is what an earlier
		// run cached: the writer checks that again as it reads, since a
		// disk can rot between runs.
		d := order[i].Desc.Digest
		if src.isPlanned(d) || src.spool.has(d) || src.cached(ctx, d) || !claims[i].CompareAndSwap(false, true) {
			return nil
		}
		if err := src.account(ctx, order[i], opts.Progress, st); err != nil {
			return err
		}
		close(ready[i])
		return nil
	}
	for i, n := range order {
		if n.Desc.Size > prefetchSmall || claims[i].Load() {
			continue
		}
		if err := take(i); err != nil {
			return err
		}
	}
	for i := len(order) - 1; i >= 0; i-- {
		if claims[i].Load() {
			continue
		}
		if done, err := pace.wait(ctx); done || err != nil {
			return err
		}
		if err := take(i); err != nil {
			return err
		}
	}
	return nil
}

// fetchError names the object, the references that need it, and what to
// do: the boundary where a fetch failure's message is built, once.
func fetchError(n *Node, err error) error {
	var done *fetchFailure
	if errors.As(err, &done) {
		return err
	}
	what := fmt.Sprintf("fetching %s %s of %s", n.Role, n.Desc.Digest, refsOf(n))
	var gaveUp *remote.GaveUpError
	switch {
	case errors.Is(err, verify.ErrMismatch):
		return &fetchFailure{fmt.Sprintf("%s from %s: %v: run the export again; if it repeats, the registry serves damaged content", what, n.Repo, err), err}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return &fetchFailure{fmt.Sprintf("%s from %s: %v: run the export again to resume", what, n.Repo, err), err}
	case errors.As(err, &gaveUp):
		// It names the registry, the request, its last answer and what
		// to do: the layers between add nothing.
		return &fetchFailure{what + ": " + gaveUp.Error(), err}
	}
	ref := n.Repo
	if len(n.Refs) > 0 {
		ref = n.Refs[0]
	}
	err = remote.Explain(err, ref)
	return &fetchFailure{fmt.Sprintf("%s from %s: %v", what, n.Repo, err), err}
}

// fetchFailure is a fetch error whose message is complete: the archive
// writer passes it on without naming the object again.
type fetchFailure struct {
	msg string
	err error
}

func (f *fetchFailure) Error() string { return f.msg }
func (f *fetchFailure) Unwrap() error { return f.err }

// asFetchFailure is the fetch failure in err's chain, or nil.
func asFetchFailure(err error) *fetchFailure {
	var f *fetchFailure
	if errors.As(err, &f) {
		return f
	}
	return nil
}

func refsOf(n *Node) string {
	switch {
	case len(n.Refs) == 0:
		return n.Repo
	case len(n.Refs) > 3:
		// A base layer can be shared by thousands of images.
		return strings.Join(n.Refs[:3], ", ") + fmt.Sprintf(" and %d more", len(n.Refs)-3)
	}
	return strings.Join(n.Refs, ", ")
}

type readAtCloser struct {
	io.Reader
	io.Closer
}

// report sums up the plan and the transfer.
func report(p *Plan, st *transferStats, res archiveResult, comp layout.Compression, out string) *Report {
	rep := &Report{
		Output:       out,
		SHA256:       res.sha256,
		Compression:  string(comp),
		Referrers:    len(uniqueReferrers(p)),
		Blobs:        len(p.Nodes),
		BytesFetched: st.fetched.Load(),
		BytesCached:  st.cached.Load(),
		BytesTotal:   p.Size(),
		ArchiveSize:  res.size,
		Skipped:      p.Skipped,
		Parts:        res.parts,
		Signature:    res.signature,
	}
	var perImage int64
	rep.Images, rep.Platforms = imageReports(p)
	for _, img := range p.Images {
		perImage += img.Size
	}
	rep.BytesDeduped = max(perImage-rep.BytesTotal, 0)
	for _, n := range p.Nodes {
		if n.IsManifest() {
			rep.Manifests++
		}
	}
	return rep
}

// imageReports lists the plan's images and counts their distinct platforms.
func imageReports(p *Plan) ([]ImageReport, int) {
	out := []ImageReport{}
	var plats []string
	for _, img := range p.Images {
		out = append(out, ImageReport{
			Reference: img.Ref,
			Digest:    img.Desc.Digest.String(),
			MediaType: img.Desc.MediaType,
			Platforms: img.Platforms,
			Referrers: img.Referrers,
		})
		for _, pl := range img.Platforms {
			if !slices.Contains(plats, pl) {
				plats = append(plats, pl)
			}
		}
	}
	return out, len(plats)
}

func uniqueReferrers(p *Plan) map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, r := range p.Referrers {
		out[r.Desc.Digest] = true
	}
	return out
}

package unpack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/referrers"
	"github.com/bundle-dev/bundle/verify"
)

// importer is the state of one Import.
type importer struct {
	opts     Options
	t        target
	b        *verify.Bundle
	reg      *registry
	plan     *plan
	report   *Report
	progress progress.Tracker

	mu      sync.Mutex
	blobErr map[digest.Digest]error
	// blobsThere holds, per repository, blobs below an image the target
	// has already: not asked for again.
	blobsThere map[string]map[digest.Digest]bool
	// tagsDone holds "repo:tag" pushed with their manifest.
	tagsDone map[string]bool
	// pushed records, per repository, each manifest's outcome: nil once
	// it is on the target (pushed or found there).
	pushed map[string]map[digest.Digest]error
}

// Import pushes the bundle at file ("-" for opts.Stdin) to opts.Target.
// Images that cannot land are listed in Report.Failed and the error names
// them; the others are pushed all the same.
func Import(ctx context.Context, file string, opts Options) (*Report, error) {
	start := time.Now()
	if err := authenticate(ctx, file, opts); err != nil {
		return nil, err
	}
	t, err := parseTarget(opts.Target)
	if err != nil {
		return nil, err
	}
	mode, err := referrers.ParseMode(opts.ReferrersMode)
	if err != nil {
		return nil, err
	}
	switch opts.SparseIndex {
	case "", "single", "rewrite":
	default:
		return nil, fmt.Errorf("sparse index handling %q: want single or rewrite", opts.SparseIndex)
	}
	opts = opts.withDefaults()
	b, err := verify.Open(ctx, file, verify.Options{Stdin: opts.Stdin, Notice: opts.Notice})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	im := &importer{
		opts: opts, t: t, b: b, progress: opts.Progress,
		report:     &Report{Target: opts.Target, DryRun: opts.DryRun, ReferrersMode: string(mode)},
		blobErr:    map[digest.Digest]error{},
		pushed:     map[string]map[digest.Digest]error{},
		blobsThere: map[string]map[digest.Digest]bool{},
		tagsDone:   map[string]bool{},
	}
	im.reg = newRegistry(ctx, t.host, opts.Remote, mode)
	if im.plan, err = newPlan(b.Graph, t, im.notice); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	for _, i := range im.plan.images {
		im.report.Images = append(im.report.Images, ImageReport{
			Source: i.source, Target: t.ref(i.repo, i.tag, i.root.Desc.Digest), Digest: i.root.Desc.Digest.String(),
		})
	}
	err = im.run(ctx)
	if err == nil && opts.Receipt != "" && !opts.DryRun {
		err = im.writeReceipt(opts.Receipt)
	}
	im.report.Duration = time.Since(start)
	return im.report, err
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Progress == nil {
		o.Progress = progress.Discard{}
	}
	if o.Notice == nil {
		o.Notice = func(string, ...any) {}
	}
	return o
}

func (im *importer) notice(format string, args ...any) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.opts.Notice(format, args...)
}

func (im *importer) run(ctx context.Context) error {
	if err := im.preflight(ctx); err != nil {
		return remote.Explain(err, im.t.host)
	}
	for _, i := range im.plan.images {
		if i.refused != nil && i.err == nil {
			i.err = i.refused
		}
	}
	jobs, err := im.checkTarget(ctx)
	if err != nil {
		return remote.Explain(err, im.t.host)
	}
	if im.b.Random {
		jobs = im.missingBlobs(jobs, func(d digest.Digest) bool { _, ok := im.b.Present[d]; return ok })
	}
	if im.opts.DryRun {
		// The real import checks each blob as it pushes it: so must a dry
		// run, or it would say yes to a bundle the import then refuses.
		if err := im.readBlobs(ctx, jobs); err != nil {
			return err
		}
		im.dryRunNotices(jobs)
	} else {
		if im.b.Random {
			err = im.pushBlobsAt(ctx, jobs)
		} else {
			err = im.pushBlobsStream(ctx, jobs)
		}
		if err != nil {
			return fmt.Errorf("importing to %s: %w", im.t.host, err)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return im.pushGraph(ctx)
}

// pushGraph pushes manifests (children first), then tags, then referrers,
// then cosign tags, and fills the report.
func (im *importer) pushGraph(ctx context.Context) error {
	for _, name := range im.plan.names {
		rp := im.plan.repos[name]
		im.pushLevels(ctx, rp, rp.levels, false)
	}
	images := im.plan.images
	_ = forEach(ctx, im.opts.Concurrency, len(images), func(ctx context.Context, k int) error {
		if i := images[k]; i.err == nil && !i.cosign {
			i.err = im.tagImage(ctx, i, &im.report.Images[k])
		}
		return nil
	})
	if im.opts.DryRun && im.reg.pub.Mode != referrers.ModeAPI && im.reg.pub.Mode != referrers.ModeTag && im.hasReferrers() {
		if has, err := im.reg.pub.HasAPI(ctx, im.reg.name(im.plan.names[0])); err == nil {
			im.report.ReferrersMode = map[bool]string{true: string(referrers.ModeAPI), false: string(referrers.ModeTag)}[has]
		}
	}
	for _, name := range im.plan.names {
		if err := im.publishReferrers(ctx, im.plan.repos[name]); err != nil {
			im.report.Failed = append(im.report.Failed, err.Error())
		}
	}
	for _, i := range images {
		if i.err == nil && i.cosign {
			i.err = im.tagCosign(ctx, i)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return im.finish()
}

func (im *importer) hasReferrers() bool {
	for _, rp := range im.plan.repos {
		if len(rp.referrers) > 0 {
			return true
		}
	}
	return false
}

func (im *importer) finish() error {
	failed := 0
	for k, i := range im.plan.images {
		rep := &im.report.Images[k]
		rep.Referrers = i.referrers
		if _, tried := im.state(i.repo, i.root.Desc.Digest); i.err == nil && !tried {
			i.err = errors.New("not pushed: the import stopped before it")
		}
		switch {
		case i.err != nil:
			failed++
			rep.State, rep.Error = StateFailed, i.err.Error()
			if i.refused != nil {
				rep.State = StateRefused
			}
			im.report.Failed = append(im.report.Failed, fmt.Sprintf("%s (%s): %v", rep.Target, i.source, i.err))
			continue
		case i.there:
			rep.State = StateThere
		case im.opts.DryRun:
			rep.State = StatePush
		default:
			rep.State, rep.Pushed = StatePushed, true
		}
	}
	others := len(im.report.Failed) - failed
	switch {
	case failed > 0 && others > 0:
		return fmt.Errorf("%d of %d images failed, and %d other problems: %s", failed, len(im.plan.images), others, joinNames(im.report.Failed))
	case failed > 0:
		return fmt.Errorf("%d of %d images failed: %s", failed, len(im.plan.images), joinNames(im.report.Failed))
	case others > 0:
		return fmt.Errorf("%d problems: %s", others, joinNames(im.report.Failed))
	}
	return nil
}

func (im *importer) dryRunNotices(jobs []*blobJob) {
	missing := map[string]int{}
	for _, j := range jobs {
		for _, r := range j.missing {
			missing[r]++
		}
	}
	for _, name := range im.plan.names {
		n := 0
		for _, l := range im.plan.repos[name].levels {
			n += len(l)
		}
		im.notice("%s: %d blobs to push, %d manifests", im.reg.name(name), missing[name], n)
	}
}

func (im *importer) state(repo string, d digest.Digest) (error, bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	err, ok := im.pushed[repo][d]
	return err, ok
}

func (im *importer) setState(repo string, d digest.Digest, err error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.pushed[repo] == nil {
		im.pushed[repo] = map[digest.Digest]error{}
	}
	im.pushed[repo][d] = err
}

// node is the manifest d of the bundle.
func (im *importer) node(d digest.Digest) *graph.Node { return im.plan.g.Node(d) }

package unpack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/referrers"
)

// importer is the state of one Import.
type importer struct {
	opts        Options
	t           target
	reg         *registry
	plan        *plan
	images      []*image // parallel to report.Images
	report      *Report
	progress    progress.Tracker
	concurrency int

	mu            sync.Mutex
	blobErr       map[digest.Digest]error
	manifestState map[string]map[digest.Digest]error // repo -> manifest -> nil once pushed
}

// Import pushes the bundle at file ("-" for opts.Stdin) to opts.Target.
// Images that cannot land are listed in Report.Failed and the error names
// them; the others are pushed all the same.
func Import(ctx context.Context, file string, opts Options) (*Report, error) {
	start := time.Now()
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
	im := newImporter(opts, t)
	im.report.ReferrersMode = string(mode)

	src, err := openSource(ctx, file, opts.Stdin, im.notice)
	if err != nil {
		return nil, err
	}
	defer src.close()

	im.reg = newRegistry(ctx, t.host, opts.Remote, mode)
	err = im.run(ctx, src)
	im.report.Duration = time.Since(start)
	return im.report, err
}

func newImporter(opts Options, t target) *importer {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard{}
	}
	if opts.Notice == nil {
		opts.Notice = func(string, ...any) {}
	}
	return &importer{
		opts: opts, t: t, progress: opts.Progress, concurrency: opts.Concurrency,
		report:        &Report{Target: opts.Target, DryRun: opts.DryRun},
		blobErr:       map[digest.Digest]error{},
		manifestState: map[string]map[digest.Digest]error{},
	}
}

func (im *importer) notice(format string, args ...any) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.opts.Notice(format, args...)
}

func (im *importer) run(ctx context.Context, src *source) error {
	im.plan = newPlan(loadGraph(src.idx, src.get), im.t, im.notice)
	im.images = im.plan.images
	for _, i := range im.images {
		im.report.Images = append(im.report.Images, ImageReport{
			Source: i.source, Target: im.t.ref(i.repo, i.tag, i.desc.Digest), Digest: i.desc.Digest.String(),
		})
	}
	jobs, err := im.checkTarget(ctx)
	if err != nil {
		return remote.Explain(err, im.t.host)
	}
	if im.opts.DryRun {
		im.dryRunNotices(jobs)
	}
	if src.present != nil {
		jobs = im.missingBlobs(jobs, src.present)
	}
	if !im.opts.DryRun {
		if src.stream != nil {
			err = im.pushBlobsStream(ctx, src.stream, jobs)
		} else {
			err = im.pushBlobsAt(ctx, jobs, src.open)
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
	for _, repo := range im.plan.repoNames() {
		var roots []digest.Digest
		for _, i := range im.images {
			if i.repo == repo && i.err == nil && !i.cosign {
				roots = append(roots, i.desc.Digest)
			}
		}
		im.pushManifests(ctx, repo, roots)
	}
	_ = forEach(ctx, im.concurrency, len(im.images), func(ctx context.Context, k int) error {
		if i := im.images[k]; i.err == nil && !i.cosign {
			i.err = im.tagImage(ctx, i, &im.report.Images[k])
		}
		return nil
	})
	if im.opts.DryRun && len(im.plan.referrers) > 0 && im.reg.pub.Mode != referrers.ModeAPI && im.reg.pub.Mode != referrers.ModeTag {
		if has, err := im.reg.pub.HasAPI(ctx, im.reg.name(im.plan.repoNames()[0])); err == nil {
			im.report.ReferrersMode = map[bool]string{true: string(referrers.ModeAPI), false: string(referrers.ModeTag)}[has]
		}
	}
	for _, repo := range im.plan.repoNames() {
		if err := im.publishReferrers(ctx, repo); err != nil {
			im.report.Failed = append(im.report.Failed, err.Error())
		}
	}
	for _, i := range im.images {
		if i.err == nil && i.cosign {
			i.err = im.tagCosign(ctx, i)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return im.finish()
}

func (im *importer) finish() error {
	failed := 0
	for k, i := range im.images {
		rep := &im.report.Images[k]
		if _, tried := im.state(i.repo, i.desc.Digest); i.err == nil && !tried {
			i.err = fmt.Errorf("not pushed: the import stopped before it")
		}
		if i.err != nil {
			failed++
			rep.Error = i.err.Error()
			im.report.Failed = append(im.report.Failed, fmt.Sprintf("%s (%s): %v", rep.Target, i.source, i.err))
			continue
		}
		rep.Pushed = !im.opts.DryRun
		if im.opts.DryRun {
			im.notice("would push %s (%s) as %s", i.source, rep.Digest, rep.Target)
		}
	}
	if len(im.report.Failed) > 0 {
		return fmt.Errorf("import to %s: %d of %d images failed, %d other problems: %s",
			im.t.host, failed, len(im.images), len(im.report.Failed)-failed, joinNames(im.report.Failed))
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
	for _, repo := range im.plan.repoNames() {
		im.notice("%s: %d blobs to push, %d manifests", im.reg.name(repo), missing[repo], len(im.plan.manifestOrder(repo, im.rootsIn(repo))))
	}
}

func (im *importer) rootsIn(repo string) []digest.Digest {
	var out []digest.Digest
	for d := range im.plan.repos[repo] {
		if _, ok := im.plan.g.manifests[d]; ok {
			out = append(out, d)
		}
	}
	return out
}

// pushBlobsStream pushes blobs as the stream brings them, one at a time. A
// blob that several repositories lack is kept in a temporary file while it
// goes to the first, in case the registry will not mount it into the others.
func (im *importer) pushBlobsStream(ctx context.Context, st *stream, jobs []*blobJob) error {
	byDigest := map[digest.Digest]*blobJob{}
	for _, j := range jobs {
		byDigest[j.desc.Digest] = j
	}
	handle := func(e layout.Entry, r io.Reader) error {
		d, err := layout.ParseBlobPath(e.Name)
		if err != nil {
			return nil
		}
		j := byDigest[d]
		if j == nil {
			return nil
		}
		delete(byDigest, d)
		if len(j.missing) > 1 && j.holder == "" {
			return im.pushViaTemp(ctx, j, r)
		}
		used := false
		im.pushJob(ctx, j, func() (io.ReadCloser, error) {
			if used {
				return nil, fmt.Errorf("blob %s: the stream cannot be read twice; import from a .tar file or a directory", d)
			}
			used = true
			return io.NopCloser(verified(io.NopCloser(r), j.desc)), nil
		})
		return nil
	}
	if !st.done {
		first := io.Reader(st.r)
		if st.firstData != nil {
			first = bytes.NewReader(st.firstData)
		}
		if err := handle(st.first, first); err != nil {
			return err
		}
		for ctx.Err() == nil {
			e, err := st.r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if err := handle(e, st.r); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rest := make([]*blobJob, 0, len(byDigest))
	for _, j := range byDigest {
		rest = append(rest, j)
	}
	im.missingBlobs(rest, func(digest.Digest) bool { return false })
	return nil
}

// pushViaTemp copies a verified blob to a temporary file and pushes from it.
func (im *importer) pushViaTemp(ctx context.Context, j *blobJob, r io.Reader) error {
	f, err := os.CreateTemp("", "bundle-blob-*")
	if err != nil {
		return fmt.Errorf("keeping blob %s for its %d repositories: %w", j.desc.Digest, len(j.missing), err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, verified(io.NopCloser(r), j.desc)); err != nil {
		im.blobError(j.desc, j.missing[0], err)
		return nil
	}
	im.pushJob(ctx, j, func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(f, 0, j.desc.Size)), nil
	})
	return nil
}

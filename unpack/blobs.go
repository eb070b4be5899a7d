package unpack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/verify"
)

// blobJob is one blob and the repositories it must reach.
type blobJob struct {
	desc    ocispec.Descriptor
	missing []string // repositories that lack it, sorted
	holder  string   // a repository of the target that has it already, to mount from
}

// checkTarget asks the target, for every repository, which of its blobs it
// has, and returns the work left: one job per blob some repository lacks.
// A failed question stops the import: nothing else would work either.
func (im *importer) checkTarget(ctx context.Context) ([]*blobJob, error) {
	type question struct {
		repo string
		desc ocispec.Descriptor
	}
	var qs []question
	for _, repo := range im.plan.names {
		for _, b := range im.plan.repos[repo].blobs {
			if im.blobThere(repo, b.Digest) {
				continue // below an image the target has
			}
			qs = append(qs, question{repo, b})
		}
	}
	answers := make([]bool, len(qs))
	err := forEach(ctx, im.opts.Concurrency, len(qs), func(ctx context.Context, i int) error {
		has, err := im.reg.blobExists(ctx, qs[i].repo, qs[i].desc.Digest)
		if err != nil {
			return fmt.Errorf("asking %s for blob %s: %w", im.reg.name(qs[i].repo), qs[i].desc.Digest, err)
		}
		answers[i] = has
		return nil
	})
	if err != nil {
		return nil, err
	}
	jobs := map[digest.Digest]*blobJob{}
	for i, q := range qs {
		j := jobs[q.desc.Digest]
		if j == nil {
			j = &blobJob{desc: q.desc}
			jobs[q.desc.Digest] = j
		}
		if j.holder == "" {
			j.holder = im.holderOf(q.desc.Digest)
		}
		if answers[i] {
			im.report.Skipped++
			if j.holder == "" {
				j.holder = q.repo
			}
			if im.opts.DryRun {
				im.notice("%s already has blob %s", im.reg.name(q.repo), q.desc.Digest)
			}
			continue
		}
		j.missing = append(j.missing, q.repo)
	}
	var out []*blobJob
	for _, j := range jobs {
		if len(j.missing) > 0 {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].desc.Digest < out[k].desc.Digest })
	return out, nil
}

// pushJob brings one blob into every repository that lacks it: the first
// gets the bytes (unless some repository of the target already has them),
// the others a cross-repo mount from it.
func (im *importer) pushJob(ctx context.Context, j *blobJob, open func() (io.ReadCloser, error)) {
	d := j.desc
	id := d.Digest.String()
	im.progress.Start(id, short(d.Digest), d.Size)
	from := j.holder
	for _, repo := range j.missing {
		res, err := im.reg.pushBlob(ctx, repo, d, from, open, progressWriter{im.progress, id})
		if err != nil {
			err = im.blobError(d, repo, err)
			im.progress.Done(id, false, err)
			return
		}
		im.count(res, d.Size)
		if from == "" {
			from = repo
		}
	}
	im.progress.Done(id, false, nil)
}

func (im *importer) count(res pushResult, size int64) {
	im.mu.Lock()
	defer im.mu.Unlock()
	switch res {
	case uploaded:
		im.report.Uploaded++
		im.report.BytesUploaded += size
	case mounted:
		im.report.Mounted++
	case existed:
		im.report.Skipped++
	}
}

// blobError records that d could not be brought into repo, naming the
// images that need it, and returns the error.
func (im *importer) blobError(d ocispec.Descriptor, repo string, err error) error {
	var mm *verify.MismatchError
	if errors.As(err, &mm) {
		// Said once, at the boundary: the digest and what came instead.
		err = &blobErr{msg: fmt.Sprintf("blob %s of the bundle is damaged (got %s): copy the bundle again, or export it again", d.Digest, mm.Got()), err: err}
	} else {
		err = fmt.Errorf("pushing blob %s to %s: %w", d.Digest, im.reg.name(repo), err)
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.blobErr[d.Digest] == nil {
		im.blobErr[d.Digest] = err
	}
	return err
}

// blobErr is a message built whole at the boundary, keeping the cause for
// errors.Is and errors.As without repeating its text.
type blobErr struct {
	msg string
	err error
}

func (e *blobErr) Error() string { return e.msg }
func (e *blobErr) Unwrap() error { return e.err }

// missingBlobs records every needed blob the bundle lacks. Non-distributable
// (foreign) layers are expected to be absent: registries fetch them from
// their URLs.
func (im *importer) missingBlobs(jobs []*blobJob, present func(digest.Digest) bool) []*blobJob {
	var keep []*blobJob
	for _, j := range jobs {
		switch {
		case present(j.desc.Digest), j.holder != "":
			// Absent but on the target in another repository (left out
			// of an incremental bundle): a cross-repo mount brings it.
			keep = append(keep, j)
		case graph.IsForeign(j.desc):
			im.notice("foreign layer %s is not in the bundle: the target must fetch it from its URLs", j.desc.Digest)
		default:
			im.blobErr[j.desc.Digest] = fmt.Errorf("blob %s (%s) is not in the bundle: export the image again", j.desc.Digest, j.desc.MediaType)
		}
	}
	return keep
}

// maxUploadStreams bounds the large blobs in flight, whatever
// Options.Concurrency says (which bounds the small ones, whose cost is
// round trips, and the cheap questions: HEADs). On 2 cores into
// distribution 2.8 (BenchmarkImportProcess, 256 MiB) 1 stream runs at the
// speed of a bare single-stream upload, 2 streams use both cores (about
// 0.75x of its time), and 3 or 8 gain nothing measurable while every stream
// holds a zstd decoder's window and a read buffer: peak RSS of the whole
// test process importing a .tar.zst was 51 MiB with 2, 60 with 3, 92 with 8.
const maxUploadStreams = 2

// largeBlob is the size from which a blob's upload costs bandwidth and
// CPU rather than round trips.
const largeBlob = 1 << 20

// pushBlobsAt pushes every job from a random-access bundle, concurrently,
// largest first so that no big blob starts last and runs alone.
func (im *importer) pushBlobsAt(ctx context.Context, jobs []*blobJob) error {
	jobs = slices.Clone(jobs)
	slices.SortStableFunc(jobs, func(a, b *blobJob) int { return cmp.Compare(b.desc.Size, a.desc.Size) })
	large := make(chan struct{}, maxUploadStreams)
	return forEach(ctx, im.opts.Concurrency, len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		if j.desc.Size >= largeBlob {
			select {
			case large <- struct{}{}:
				defer func() { <-large }()
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		im.pushJob(ctx, j, func() (io.ReadCloser, error) { return im.b.Open(j.desc) })
		return ctx.Err()
	})
}

// pushBlobsStream pushes blobs as the stream brings them, one at a time. A
// blob that several repositories lack is kept in a temporary file while it
// goes to the first, in case the registry will not mount it into the others.
func (im *importer) pushBlobsStream(ctx context.Context, jobs []*blobJob) error {
	byDigest := map[digest.Digest]*blobJob{}
	for _, j := range jobs {
		byDigest[j.desc.Digest] = j
	}
	err := im.b.Blobs(ctx, func(e layout.Entry, d digest.Digest, r io.Reader) error {
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
			return io.NopCloser(verify.NewReader(r, j.desc)), nil
		})
		return nil
	})
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rest := make([]*blobJob, 0, len(byDigest))
	for _, j := range byDigest {
		rest = append(rest, j)
	}
	for _, j := range im.missingBlobs(rest, func(digest.Digest) bool { return false }) {
		// Not in the stream, on the target elsewhere: mounted from there.
		im.pushJob(ctx, j, func() (io.ReadCloser, error) {
			return nil, fmt.Errorf("blob %s: %w, and the target would not mount it from %s", j.desc.Digest, graph.ErrAbsent, im.reg.name(j.holder))
		})
	}
	return nil
}

// readBlobs reads every blob of jobs from the bundle, checked against its
// digest, without pushing it: the dry run's stand-in for the uploads.
func (im *importer) readBlobs(ctx context.Context, jobs []*blobJob) error {
	want := map[digest.Digest]*blobJob{}
	for _, j := range jobs {
		want[j.desc.Digest] = j
	}
	check := func(j *blobJob, r io.Reader) {
		if _, err := io.Copy(io.Discard, verify.NewReader(r, j.desc)); err != nil {
			im.blobError(j.desc, j.missing[0], err)
		}
	}
	if !im.b.Random {
		err := im.b.Blobs(ctx, func(e layout.Entry, d digest.Digest, r io.Reader) error {
			if j := want[d]; j != nil {
				delete(want, d)
				check(j, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		rest := make([]*blobJob, 0, len(want))
		for _, j := range want {
			rest = append(rest, j)
		}
		im.missingBlobs(rest, func(digest.Digest) bool { return false })
		return nil
	}
	return forEach(ctx, min(im.opts.Concurrency, maxUploadStreams), len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		if _, ok := im.b.Present[j.desc.Digest]; !ok {
			return nil // to be mounted from the repository that has it
		}
		rc, err := im.b.Open(ocispec.Descriptor{Digest: j.desc.Digest, Size: j.desc.Size})
		if err != nil {
			im.blobError(j.desc, j.missing[0], err)
			return nil
		}
		defer rc.Close()
		check(j, rc)
		return ctx.Err()
	})
}

// pushViaTemp copies a verified blob to a temporary file and pushes from it.
func (im *importer) pushViaTemp(ctx context.Context, j *blobJob, r io.Reader) error {
	f, err := os.CreateTemp("", "bundle-blob-*")
	if err != nil {
		return fmt.Errorf("keeping blob %s for its %d repositories: %w", j.desc.Digest, len(j.missing), err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, verify.NewReader(r, j.desc)); err != nil {
		im.blobError(j.desc, j.missing[0], err)
		return nil
	}
	im.pushJob(ctx, j, func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(f, 0, j.desc.Size)), nil
	})
	return nil
}

type progressWriter struct {
	t  interface{ Add(string, int64) }
	id string
}

func (p progressWriter) Write(b []byte) (int, error) {
	p.t.Add(p.id, int64(len(b)))
	return len(b), nil
}

func short(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return d.Algorithm().String() + ":" + e
}

// forEach runs fn for 0..n-1 with at most limit at once. It stops starting
// new work at the first error or when ctx ends, and returns that error.
func forEach(ctx context.Context, limit, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		}(i)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// joinNames is a short list of names for messages.
func joinNames(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config says what to run.
type Config struct {
	Size     int64  // unique bytes of the data set, about
	Seed     uint64 // the same seed gives the same bytes
	Runs     int    // repetitions of each bundle step; the median counts
	Bundle   string // the bundle binary
	Registry string // the docker-registry binary
	Regctl   string // regctl, the scale benchmark's peer; "" leaves it out
	TempDir  string // parent of the scratch directory; "" means os.TempDir
	Log      io.Writer
}

// Result is one benchmark run.
type Result struct {
	Config      Config
	Started     time.Time
	Counts      Counts
	UniqueBytes int64
	Rows        []Row
}

// Failed reports whether any step failed (as opposed to missing a target).
func (r *Result) Failed() bool {
	for _, row := range r.Rows {
		if row.Err != "" {
			return true
		}
	}
	return false
}

// Run builds the data set, pushes it into a fresh source registry,
// measures the floors and the bundle steps, and removes everything it made
// before it returns, also when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Runs < 1 {
		cfg.Runs = 1
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	res := &Result{Config: cfg, Started: time.Now().UTC()}
	plan, err := NewPlan(cfg.Size, cfg.Seed)
	if err != nil {
		return nil, err
	}
	res.Counts = plan.Count()
	work, err := os.MkdirTemp(cfg.TempDir, "bundlebench-")
	if err != nil {
		return nil, fmt.Errorf("creating a scratch directory: %w", err)
	}
	defer os.RemoveAll(work)

	logf(cfg.Log, "generating the data set (%s, seed %d)", humanBytes(cfg.Size), cfg.Seed)
	ds, err := Build(ctx, plan)
	if err != nil {
		return nil, err
	}
	res.UniqueBytes = ds.UniqueBytes
	src, err := StartRegistry(ctx, cfg.Registry, filepath.Join(work, "source"))
	if err != nil {
		return nil, err
	}
	defer src.RemoveAll()
	logf(cfg.Log, "pushing %d blobs and %d manifests to the source registry %s", len(ds.Blobs), len(ds.Manifests)+len(ds.Fallback), src.Host)
	if err := Push(ctx, NewClient(src.Host), ds); err != nil {
		return nil, fmt.Errorf("pushing the data set to %s: %w", src.Host, err)
	}

	logf(cfg.Log, "measuring the floors")
	floors, err := measureFloors(ctx, cfg, src, ds, work)
	if err != nil {
		return nil, err
	}
	res.Rows = append(res.Rows, floors.Rows()...)

	steps := &stepRunner{cfg: cfg, ds: ds, src: src, work: work}
	for _, ext := range []string{".tar", ".tar.zst"} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, steps.format(ctx, ext)...)
	}
	res.Rows = append(res.Rows, steps.peers(ctx)...)
	res.Rows = append(res.Rows, steps.sync(ctx)...) // last: it changes the source
	addChecks(res.Rows, floors)
	return res, ctx.Err()
}

// Step names; addChecks finds rows by them.
const (
	stepExport      = "bundle export %s"
	stepImportEmpty = "bundle import %s → empty registry"
	stepImportFull  = "bundle import %s → full registry"
	stepVerify      = "bundle verify %s"
	stepInspect     = "bundle inspect %s"
	// stepExportSplit is the .tar.zst export cut into parts with two
	// parity parts, as for DVDs (issue 14): at most 1.3x the plain one.
	stepExportSplit = "bundle export .tar.zst --split-size %s --parity 2"
)

// splitSize cuts the benchmark's bundle into about ten parts: the parity
// parts then add a fifth to what is written, as for a stack of DVDs.
func splitSize(unique int64) string {
	return fmt.Sprintf("%dMiB", max(1, unique/10>>20))
}

type stepRunner struct {
	cfg  Config
	ds   *DataSet
	src  *Registry
	work string
}

// format runs export, import (empty, then full), verify and, for .tar.zst,
// inspect on one archive format, then deletes the archive.
func (s *stepRunner) format(ctx context.Context, ext string) []Row {
	archive := filepath.Join(s.work, "bundle"+ext)
	defer removeArchive(archive)
	logf(s.cfg.Log, "bundle export %s", ext)
	export := s.repeat(ctx, fmt.Sprintf(stepExport, ext), func(i int) (Sample, error) { return s.export(ctx, archive, i) })
	rows := []Row{export}
	var archiveSize int64
	if info, err := os.Stat(archive); export.Err == "" && err == nil {
		archiveSize = info.Size()
	} else {
		if export.Err == "" {
			rows[0].Err = fmt.Sprintf("the export left no %s: %v", archive, err)
		}
		steps := []string{stepImportEmpty, stepImportFull, stepVerify}
		if ext == ".tar.zst" {
			steps = append(steps, stepInspect)
		}
		for _, st := range steps {
			rows = append(rows, Row{Step: fmt.Sprintf(st, ext), Skipped: true, Err: "the export did not produce " + filepath.Base(archive)})
		}
		return rows
	}
	logf(s.cfg.Log, "bundle import %s", ext)
	rows = append(rows, s.imports(ctx, ext, archive)...)
	logf(s.cfg.Log, "bundle verify %s", ext)
	rows = append(rows, s.repeat(ctx, fmt.Sprintf(stepVerify, ext), func(int) (Sample, error) {
		return RunChild(ctx, s.work, s.cfg.Bundle, "verify", "--json", archive)
	}))
	if ext == ".tar.zst" {
		logf(s.cfg.Log, "bundle inspect %s", ext)
		rows = append(rows, s.inspect(ctx, ext, archive, archiveSize))
		size := splitSize(s.ds.UniqueBytes)
		logf(s.cfg.Log, stepExportSplit, size)
		rows = append(rows, s.repeat(ctx, fmt.Sprintf(stepExportSplit, size), func(i int) (Sample, error) {
			defer removeParts(archive)
			return s.export(ctx, archive, i, "--split-size", size, "--parity", "2")
		}))
	}
	return rows
}

// repeat runs one step cfg.Runs times and folds the samples.
func (s *stepRunner) repeat(ctx context.Context, step string, run func(i int) (Sample, error)) Row {
	var samples []Sample
	for i := range s.cfg.Runs {
		sample, err := run(i)
		if err != nil {
			return Row{Step: step, Err: err.Error(), RSSLimit: RSSLimit}
		}
		samples = append(samples, sample)
		if ctx.Err() != nil {
			return Row{Step: step, Err: ctx.Err().Error(), RSSLimit: RSSLimit}
		}
	}
	return Row{Step: step, Sample: Median(samples), Bytes: s.ds.UniqueBytes, RSSLimit: RSSLimit}
}

// export writes the archive with a cache of its own, so every run fetches
// every byte from the source, and drops the cache afterwards.
func (s *stepRunner) export(ctx context.Context, archive string, run int, extra ...string) (Sample, error) {
	removeArchive(archive)
	cache := filepath.Join(s.work, fmt.Sprintf("cache-%d", run))
	defer os.RemoveAll(cache)
	args := append([]string{"export", "--plain-http", "--quiet", "--json", "--cache", cache, "-o", archive}, extra...)
	for _, ref := range s.ds.Refs {
		args = append(args, s.src.Host+"/"+ref)
	}
	return RunChild(ctx, s.work, s.cfg.Bundle, args...)
}

// imports times imports into fresh registries, then into the last of them
// again, when everything is already there.
func (s *stepRunner) imports(ctx context.Context, ext, archive string) []Row {
	emptyStep, fullStep := fmt.Sprintf(stepImportEmpty, ext), fmt.Sprintf(stepImportFull, ext)
	var target *Registry
	defer func() {
		if target != nil {
			_ = target.RemoveAll()
		}
	}()
	empty := s.repeat(ctx, emptyStep, func(i int) (Sample, error) {
		if err := s.freshTarget(ctx, &target, fmt.Sprintf("target-%s-%d", strings.TrimPrefix(ext, "."), i)); err != nil {
			return Sample{}, err
		}
		sample, err := s.importInto(ctx, target, archive)
		if err != nil {
			return sample, err
		}
		return sample, s.checkTarget(ctx, target)
	})
	if empty.Err != "" {
		return []Row{empty, {Step: fullStep, Skipped: true, Err: "the import into an empty registry failed"}}
	}
	full := s.repeat(ctx, fullStep, func(int) (Sample, error) { return s.importInto(ctx, target, archive) })
	return []Row{empty, full}
}

// freshTarget replaces *target, if any, with a new, empty registry whose
// storage is the scratch directory name.
func (s *stepRunner) freshTarget(ctx context.Context, target **Registry, name string) error {
	if *target != nil {
		if err := (*target).RemoveAll(); err != nil {
			return err
		}
		*target = nil
	}
	r, err := StartRegistry(ctx, s.cfg.Registry, filepath.Join(s.work, name))
	if err != nil {
		return err
	}
	*target = r
	return nil
}

func (s *stepRunner) importInto(ctx context.Context, target *Registry, archive string) (Sample, error) {
	return RunChild(ctx, s.work, s.cfg.Bundle, "import", "--plain-http", "--quiet", "--json", "--target", target.Host, archive)
}

// checkTarget makes sure an import that was fast also did its work: every
// manifest of the data set must be on the target.
func (s *stepRunner) checkTarget(ctx context.Context, target *Registry) error {
	c := NewClient(target.Host)
	for _, m := range s.ds.Manifests {
		if _, err := c.Get(ctx, m.Repo, m.Desc, true); err != nil {
			return fmt.Errorf("the import exited 0 but the target lacks a manifest: %w", err)
		}
	}
	return nil
}

// inspect times inspect and takes the bytes it read from its --json report
// when the report has them.
func (s *stepRunner) inspect(ctx context.Context, ext, archive string, archiveSize int64) Row {
	var read int64 = -1
	row := s.repeat(ctx, fmt.Sprintf(stepInspect, ext), func(int) (Sample, error) {
		sample, err := RunChild(ctx, s.work, s.cfg.Bundle, "inspect", "--json", archive)
		if err == nil {
			read = bytesRead(sample.Stdout)
		}
		return sample, err
	})
	row.Bytes = 0 // inspect is not meant to read the data set; MB/s would mislead
	c := &Check{Against: "bytes read / archive size", Percent: true, Limit: 0.01}
	if read >= 0 && archiveSize > 0 {
		c.Value, c.Known = float64(read)/float64(archiveSize), true
	} else {
		c.Against += " (the report gives no bytes read)"
	}
	row.Check = c
	return row
}

// bytesRead finds a bytes-read count at the top level of a JSON report,
// under any of the spellings a report may use.
func bytesRead(report []byte) int64 {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(report, &top); err != nil {
		return -1
	}
	for k, v := range top {
		switch strings.ToLower(strings.ReplaceAll(k, "_", "")) {
		case "bytesread", "readbytes":
			var n int64
			if json.Unmarshal(v, &n) == nil && n >= 0 {
				return n
			}
		}
	}
	return -1
}

// removeParts removes what a split export wrote.
func removeParts(archive string) {
	matches, _ := filepath.Glob(archive + ".*")
	for _, m := range matches {
		os.Remove(m)
	}
}

func removeArchive(archive string) {
	for _, p := range []string{archive, archive + ".sha256", archive + ".partial"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "bundlebench: removing %s: %v\n", p, err)
		}
	}
}

// addChecks puts the targets on the bundle rows, each against its
// floor, once every row is measured.
func addChecks(rows []Row, f *Floors) {
	byStep := map[string]*Row{}
	for i := range rows {
		byStep[rows[i].Step] = &rows[i]
	}
	wall := func(step string) (time.Duration, bool) {
		r, ok := byStep[step]
		return r.Sample.Wall, ok && r.Err == "" && r.Sample.Wall > 0
	}
	set := func(step, against string, floor time.Duration, floorOK bool, limit float64, percent bool) {
		r, ok := byStep[step]
		if !ok {
			return
		}
		c := &Check{Against: against, Limit: limit, Percent: percent}
		if floorOK && floor > 0 && r.Err == "" {
			c.Value, c.Known = r.Sample.Wall.Seconds()/floor.Seconds(), true
		}
		r.Check = c
	}
	floorOK := func(rs ...Row) (time.Duration, bool) {
		var sum time.Duration
		for _, r := range rs {
			if r.Err != "" {
				return 0, false
			}
			sum += r.Sample.Wall
		}
		return sum, true
	}
	// Export must read, hash and write every byte once; the floor does
	// just that, overlapped as export may overlap it.
	ghw, ok := floorOK(f.GetHashWrite)
	set(fmt.Sprintf(stepExport, ".tar"), "GET + sha256 + write floor", ghw, ok, 1.5, false)
	sha, okSha := floorOK(f.SHA256)
	tarWall, ok := wall(fmt.Sprintf(stepExport, ".tar"))
	set(fmt.Sprintf(stepExport, ".tar.zst"), "export .tar", tarWall, ok, 1.3, false)
	zstWall, ok := wall(fmt.Sprintf(stepExport, ".tar.zst"))
	for step := range byStep {
		if strings.HasPrefix(step, "bundle export .tar.zst --split-size ") {
			set(step, "export .tar.zst", zstWall, ok, 1.3, false)
		}
	}
	for _, ext := range []string{".tar", ".tar.zst"} {
		up, ok := floorOK(f.Upload)
		set(fmt.Sprintf(stepImportEmpty, ext), "upload floor", up, ok, 1.2, false)
		empty, ok := wall(fmt.Sprintf(stepImportEmpty, ext))
		set(fmt.Sprintf(stepImportFull, ext), "import "+ext+" → empty", empty, ok, 0.05, true)
	}
	// The issue asks verify to run at 0.8x the floor's speed or better:
	// as a time ratio that is 1/0.8.
	set(fmt.Sprintf(stepVerify, ".tar"), "sha256 floor", sha, okSha, verifyLimit, false)
	shaZstd, ok := floorOK(f.SHA256, f.Unzstd)
	set(fmt.Sprintf(stepVerify, ".tar.zst"), "sha256 + zstd -d floors", shaZstd, ok, verifyLimit, false)
}

// verifyLimit is the time ratio of a verify that runs at 0.8x the speed of
// its floor.
const verifyLimit = 1 / 0.8

func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "bundlebench: %s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

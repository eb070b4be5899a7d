package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
)

// Rows of the recurring-sync measurement (issue 13): after a bundle of
// the whole set, 1 layer in changeEvery changes, and the next sync is
// exported in full and with --since the first bundle.
const (
	stepSyncFull = "sync: bundle export .tar.zst, 10% of layers changed (full)"
	stepSyncIncr = "sync: bundle export --since .tar.zst, 10% of layers changed"
	changeEvery  = 10
	// syncLimit is the incremental bundle's size against the full one's
	// that counts as "carries what changed": the changed layers are about
	// a tenth of the bytes, and every manifest still travels.
	syncLimit = 0.25
)

// sync measures the incremental export against the full one. It changes
// the source registry's tags, so it runs after every other step.
func (s *stepRunner) sync(ctx context.Context) []Row {
	base := filepath.Join(s.work, "sync-base.tar.zst")
	full := filepath.Join(s.work, "sync-full.tar.zst")
	incr := filepath.Join(s.work, "sync-incr.tar.zst")
	defer func() {
		for _, a := range []string{base, full, incr} {
			removeArchive(a)
		}
	}()
	skip := func(why string) []Row {
		return []Row{{Step: stepSyncFull, Skipped: true, Err: why}, {Step: stepSyncIncr, Skipped: true, Err: why}}
	}
	logf(s.cfg.Log, "sync: the base bundle")
	if _, err := s.exportWith(ctx, base, "sync-base", nil); err != nil {
		return skip("the base export failed: " + err.Error())
	}
	logf(s.cfg.Log, "sync: changing 1 layer in %d and pushing what changed", changeEvery)
	if err := s.changeLayers(ctx); err != nil {
		return skip(err.Error())
	}
	logf(s.cfg.Log, "sync: full and incremental exports")
	fullRow := s.repeat(ctx, stepSyncFull, func(i int) (Sample, error) {
		return s.exportWith(ctx, full, fmt.Sprintf("sync-full-%d", i), nil)
	})
	incrRow := s.repeat(ctx, stepSyncIncr, func(i int) (Sample, error) {
		return s.exportWith(ctx, incr, fmt.Sprintf("sync-incr-%d", i), []string{"--since", base})
	})
	c := &Check{Against: "archive size / full sync's", Percent: true, Limit: syncLimit}
	fi, err1 := os.Stat(full)
	ii, err2 := os.Stat(incr)
	if fullRow.Err == "" && incrRow.Err == "" && err1 == nil && err2 == nil && fi.Size() > 0 {
		c.Value, c.Known = float64(ii.Size())/float64(fi.Size()), true
		logf(s.cfg.Log, "sync: full bundle %s in %s, incremental %s in %s", humanBytes(fi.Size()), fullRow.Sample.Wall, humanBytes(ii.Size()), incrRow.Sample.Wall)
		incrRow.Bytes = ii.Size()
	}
	incrRow.Check = c
	return []Row{fullRow, incrRow}
}

// exportWith exports every tag of the set to archive with a cache of its
// own (removed afterwards), so that every byte comes from the source.
func (s *stepRunner) exportWith(ctx context.Context, archive, cacheName string, extra []string) (Sample, error) {
	removeArchive(archive)
	cache := filepath.Join(s.work, cacheName)
	defer os.RemoveAll(cache)
	args := append([]string{"export", "--plain-http", "--quiet", "--json", "--cache", cache, "-o", archive}, extra...)
	for _, ref := range s.ds.Refs {
		args = append(args, s.src.Host+"/"+ref)
	}
	return RunChild(ctx, s.work, s.cfg.Bundle, args...)
}

// changeLayers gives 1 layer in changeEvery new bytes, rebuilds the data
// set (new configs and manifests above the changed layers) and pushes the
// new blobs and every manifest and tag to the source.
func (s *stepRunner) changeLayers(ctx context.Context) error {
	p := *s.ds.Plan
	p.Layers = append([]Layer(nil), p.Layers...)
	for i := range p.Layers {
		if i%changeEvery == changeEvery-1 {
			p.Layers[i].Seed ^= 0x5bd1e9955bd1e995
		}
	}
	next, err := Build(ctx, &p)
	if err != nil {
		return fmt.Errorf("rebuilding the changed data set: %w", err)
	}
	old := map[digest.Digest]bool{}
	for _, b := range s.ds.Blobs {
		old[b.Desc.Digest] = true
	}
	push := *next
	push.Blobs = nil
	for _, b := range next.Blobs {
		if !old[b.Desc.Digest] {
			push.Blobs = append(push.Blobs, b)
		}
	}
	if err := Push(ctx, NewClient(s.src.Host), &push); err != nil {
		return fmt.Errorf("pushing the changed data set: %w", err)
	}
	s.ds = next
	return nil
}

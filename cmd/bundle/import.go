package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/safetext"
	"github.com/bundle-dev/bundle/unpack"
)

func importCommand(s streams, parseOnly bool) *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "push a bundle into a registry, referrers included",
		ArgsUsage: "FILE (- for stdin)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "target", Usage: "registry `HOST[:PORT][/PREFIX]` to push to"},
			&cli.StringFlag{Name: "referrers-mode", Value: "auto", Usage: "`auto|api|tag`: api needs the referrers API on the target, tag writes fallback tag indexes"},
			&cli.StringFlag{Name: "sparse-index", Usage: "`single|rewrite` for an index exported with --platform: push the platform manifests only, or a new smaller index (default: refuse)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "check the bundle and the target, push nothing"},
			keyFlag(),
			&cli.StringFlag{Name: "receipt", Usage: "after a successful import, write what the target holds of the bundle to `FILE` (a base for export --since)", TakesFile: true},
		}, remoteFlags()...),
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, "FILE (the bundle to import)")
			if err != nil {
				return err
			}
			if len(a) > 1 {
				return usagef(c, "one FILE at a time, got %d", len(a))
			}
			if err := oneOf(c, "referrers-mode", "auto", "api", "tag"); err != nil {
				return err
			}
			if c.IsSet("sparse-index") {
				if err := oneOf(c, "sparse-index", "single", "rewrite"); err != nil {
					return err
				}
			}
			if c.String("target") == "" {
				// A dry run is checked against its target too (which blobs
				// it already has); inspect needs no registry.
				return usagef(c, "missing --target HOST[:PORT][/PREFIX] (to see what a bundle holds without a registry, run 'bundle inspect FILE')")
			}
			if err := checkConcurrency(c); err != nil {
				return err
			}
			if parseOnly {
				return nil
			}
			if err := checkHostsDir(c); err != nil {
				return err
			}
			return runImport(c, s, a[0])
		},
	}
}

func runImport(c *cli.Context, s streams, file string) error {
	display := progress.New(s.err, c.Bool("quiet"), progressInterval)
	rep, err := unpack.Import(c.Context, file, unpack.Options{
		Target:        c.String("target"),
		ReferrersMode: c.String("referrers-mode"),
		SparseIndex:   c.String("sparse-index"),
		DryRun:        c.Bool("dry-run"),
		Key:           c.String("key"),
		Receipt:       c.String("receipt"),
		Concurrency:   c.Int("concurrency"),
		Remote:        remoteOptions(c),
		Progress:      display,
		Stdin:         s.in,
		Notice:        notice(c, display),
	})
	display.Close()
	// A partial import still has a report worth printing: what landed and what not.
	if rep != nil {
		if !c.Bool("quiet") {
			importSummary(s.err, rep, err != nil)
		}
		if c.Bool("json") {
			if jerr := writeJSON(s.out, rep); err == nil {
				err = jerr
			}
		}
	}
	if err != nil {
		if rep != nil && !c.Bool("quiet") && imageErrors(rep) > 0 {
			// Each image's error is on its line above: once is enough.
			return fmt.Errorf("import of %s into %s: %d of %d images not imported (their reasons are above)", file, c.String("target"), imageErrors(rep), len(rep.Images))
		}
		return fmt.Errorf("import of %s into %s: %w", file, c.String("target"), err)
	}
	return nil
}

func imageErrors(r *unpack.Report) int {
	n := 0
	for _, im := range r.Images {
		if im.Error != "" {
			n++
		}
	}
	return n
}

// importSummary prints what landed; failed says the import stopped early,
// so an image not pushed may simply not have been reached.
func importSummary(w io.Writer, r *unpack.Report, failed bool) {
	verb := "imported"
	switch {
	case r.DryRun:
		verb = "would import"
	case failed && slices.ContainsFunc(r.Images, func(im unpack.ImageReport) bool { return im.State == "" || im.State == unpack.StateNotReached }):
		verb = "import stopped early:"
	}
	count := map[string]int{}
	for _, im := range r.Images {
		count[im.State]++
	}
	var parts []string
	for _, st := range []string{unpack.StatePushed, unpack.StatePush, unpack.StateThere, unpack.StateRefused, unpack.StateFailed} {
		if count[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[st], st))
		}
	}
	fmt.Fprintf(w, "%s %d image(s) (%s), %d tag(s), %d referrer(s) into %s (referrers mode %s)\n",
		verb, len(r.Images), strings.Join(parts, ", "), r.Tags, r.Referrers, safetext.String(r.Target), r.ReferrersMode)
	for _, im := range r.Images {
		state := im.State
		if state == "" {
			state = unpack.StateNotReached
		}
		if im.Error != "" {
			state += ": " + im.Error
		}
		fmt.Fprintf(w, "  %s  %s  %s\n", safetext.String(im.Target), safetext.String(im.Digest), safetext.String(state))
	}
	fmt.Fprintf(w, "blobs: %d uploaded, %d mounted, %d already there; %s; %s\n",
		r.Uploaded, r.Mounted, r.Skipped, progress.Bytes(r.BytesUploaded), r.Duration.Round(time.Millisecond))
	// The images' failures are on their lines; the others here.
	for _, f := range r.Failed {
		if !slices.ContainsFunc(r.Images, func(im unpack.ImageReport) bool { return im.Error != "" && strings.HasPrefix(f, im.Target+" ") }) {
			fmt.Fprintf(w, "failed: %s\n", safetext.String(f))
		}
	}
}

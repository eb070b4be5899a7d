package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/spec"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/pack"
)

// progressInterval is how often plain (non-terminal) progress prints a line.
const progressInterval = 3 * time.Second

func exportCommand(s streams, parseOnly bool) *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write images and their referrers into one OCI-layout archive",
		ArgsUsage: "[REF...]",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "bundle.tar.zst", Usage: "archive `FILE`; its extension picks the compression", TakesFile: true},
			&cli.StringFlag{Name: "compress", Usage: "`zstd|gzip|none` (default: by the extension of --output)"},
			&cli.StringSliceFlag{Name: "file", Aliases: []string{"f"}, Usage: "export what the spec `FILE` lists (YAML, see docs/SPEC.md; repeat for more)", TakesFile: true},
			&cli.StringSliceFlag{Name: "images-from", Usage: "export the references `FILE` lists, one a line, # comments", TakesFile: true},
			&cli.StringSliceFlag{Name: "platform", Usage: "keep only `OS/ARCH[/VARIANT]` (repeat for more; default all)"},
			&cli.BoolFlag{Name: "no-referrers", Usage: "leave signatures, SBOMs and attestations behind"},
			&cli.StringSliceFlag{Name: "artifact-type", Usage: "keep only referrers of this `TYPE` (repeat for more)"},
			&cli.StringFlag{Name: "cache", Usage: "content cache `DIR` (default: the user cache directory)", TakesFile: true},
			&cli.BoolFlag{Name: "force", Usage: "replace --output (and its .sha256) if it exists"},
			&cli.BoolFlag{Name: "dry-run", Usage: "resolve everything and print the plan; fetch no blob, write nothing"},
			&cli.StringSliceFlag{Name: "since", Usage: "leave out the blobs the earlier bundle or receipt `BASE` holds (repeat for a chain)", TakesFile: true},
			&cli.BoolFlag{Name: "allow-empty", Usage: "export the other images when --platform or --artifact-type keeps nothing of one"},
		}, append(mediaFlags(), remoteFlags()...)...),
		Action: func(c *cli.Context) error {
			var images []spec.Image
			var err error
			if !parseOnly {
				// The README's commands name spec files that exist only
				// where they are run: parse-only checks the flags alone.
				if images, err = specImages(c); err != nil {
					return err
				}
			}
			min := 1
			if len(images) > 0 || (parseOnly && (c.IsSet("file") || c.IsSet("images-from"))) {
				min = 0
			}
			refs, err := args(c, min, "REF (the image to export), or -f FILE")
			if err != nil {
				return err
			}
			if c.IsSet("compress") {
				if err := oneOf(c, "compress", string(layout.Zstd), string(layout.Gzip), string(layout.None)); err != nil {
					return err
				}
			}
			if fi, err := os.Stat(c.String("output")); err == nil && fi.IsDir() && !parseOnly {
				return usagef(c, "--output %s is a directory: give a file name, such as %s", c.String("output"), filepath.Join(c.String("output"), "bundle.tar.zst"))
			}
			if _, err := layout.CompressionFor(c.String("output"), layout.Compression(c.String("compress"))); err != nil {
				return usagef(c, "--output %v", err)
			}
			if err := checkConcurrency(c); err != nil {
				return err
			}
			if _, err := splitSize(c); err != nil {
				return err
			}
			for _, b := range c.StringSlice("since") {
				if _, err := os.Stat(b); err != nil && !parseOnly {
					return usagef(c, "--since %s: %w: name an earlier bundle or a receipt", b, err)
				}
			}
			if parseOnly {
				return nil
			}
			if err := checkHostsDir(c); err != nil {
				return err
			}
			return runExport(c, s, refs, images)
		},
	}
}

func runExport(c *cli.Context, s streams, refs []string, images []spec.Image) error {
	pass, err := signPassword(c)
	if err != nil {
		return err
	}
	display := progress.New(s.err, c.Bool("quiet"), progressInterval)
	split, _ := splitSize(c)
	rep, err := pack.Export(c.Context, refs, pack.Options{
		SplitSize:     split,
		Parity:        c.Int("parity"),
		SignKey:       c.String("sign-key"),
		KeyPassword:   pass,
		Output:        c.String("output"),
		Compression:   layout.Compression(c.String("compress")),
		Platforms:     c.StringSlice("platform"),
		NoReferrers:   c.Bool("no-referrers"),
		ArtifactTypes: c.StringSlice("artifact-type"),
		Images:        images,
		DryRun:        c.Bool("dry-run"),
		Since:         c.StringSlice("since"),
		AllowEmpty:    c.Bool("allow-empty"),
		Force:         c.Bool("force"),
		Concurrency:   c.Int("concurrency"),
		CacheDir:      c.String("cache"),
		Remote:        remoteOptions(c),
		Progress:      display,
		Notice:        notice(c, display),
		OnPlan: func(p *pack.PlanReport) {
			if !c.Bool("quiet") {
				planSummary(display, p)
			}
		},
	})
	display.Close()
	if err != nil {
		return fmt.Errorf("export to %s: %w", c.String("output"), err)
	}
	if !c.Bool("quiet") && !rep.DryRun {
		exportSummary(s.err, rep)
	}
	if c.Bool("json") {
		return writeJSON(s.out, rep)
	}
	return nil
}

// specImages reads -f and --images-from, before any network use: a
// mistake in them is bad usage, named by file, line and column.
func specImages(c *cli.Context) ([]spec.Image, error) {
	var all []spec.Image
	if files := c.StringSlice("file"); len(files) > 0 {
		imgs, err := spec.Load(files...)
		if err != nil {
			return nil, usagef(c, "%w", err)
		}
		all = append(all, imgs...)
	}
	for _, f := range c.StringSlice("images-from") {
		imgs, err := spec.LoadList(f)
		if err != nil {
			return nil, usagef(c, "%w", err)
		}
		all = append(all, imgs...)
	}
	if len(all) == 0 {
		return nil, nil
	}
	all, err := spec.Merge(all)
	if err != nil {
		return nil, usagef(c, "%w", err)
	}
	return all, nil
}

// planSummary prints the plan's numbers: all of a dry run, and the first
// lines of a real export.
func planSummary(w io.Writer, p *pack.PlanReport) {
	for _, sel := range p.Selections {
		fmt.Fprintf(w, "%s: %s selects %d tag(s): %s\n", sel.Repository, sel.Rule, len(sel.Tags), strings.Join(sel.Tags, ", "))
	}
	fmt.Fprintf(w, "plan: %d image(s), %d platform(s), %d referrer(s); %d blobs (%d manifests), %s: %s to fetch, %s in the cache\n",
		len(p.Images), p.Platforms, p.Referrers, p.Blobs, p.Manifests, progress.Bytes(p.BytesTotal), progress.Bytes(p.BytesToFetch), progress.Bytes(p.BytesCached))
	if len(p.Bases) > 0 {
		fmt.Fprintf(w, "plan: %d blobs (%s) left out, held by base %s\n", p.LeftOut, progress.Bytes(p.BytesLeftOut), strings.Join(p.Bases, ", "))
	}
}

func exportSummary(w io.Writer, r *pack.Report) {
	fmt.Fprintf(w, "exported %d image(s), %d platform(s), %d referrer(s) to %s (%s)\n",
		len(r.Images), r.Platforms, r.Referrers, r.Output, r.Compression)
	for _, im := range r.Images {
		fmt.Fprintf(w, "  %s  %s  %d referrer(s)\n", im.Reference, im.Digest, im.Referrers)
	}
	fmt.Fprintf(w, "%d blobs, %d manifests; fetched %s, from cache %s, saved by dedup %s; archive %s; %s\n",
		r.Blobs, r.Manifests, progress.Bytes(r.BytesFetched), progress.Bytes(r.BytesCached),
		progress.Bytes(r.BytesDeduped), progress.Bytes(r.ArchiveSize), r.Duration.Round(time.Millisecond))
	switch {
	case len(r.Parts) > 0:
		fmt.Fprintf(w, "written as %d part(s), %s to %s; the sha256 of each in %s.sha256\n",
			len(r.Parts), r.Parts[0], r.Parts[len(r.Parts)-1], r.Output)
	case r.SHA256 != "":
		fmt.Fprintf(w, "sha256 %s (written to %s.sha256)\n", r.SHA256, r.Output)
	}
	if r.Signature != "" {
		fmt.Fprintf(w, "signed: %s\n", r.Signature)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped foreign layer %s\n", s)
	}
}

// Command bundlebench is `make bench`: it builds a seeded data set in a
// docker-registry on 127.0.0.1, measures floors and bundle runs on it, and
// prints (and with -out appends) a results table.
//
//	go run ./internal/bench/cmd/bundlebench -size 2GiB -out docs/BENCHMARKS.md
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bundle-dev/bundle/internal/bench"
)

const docHeader = `# Benchmarks

Produced by ` + "`make bench`" + ` (` + "`go run ./internal/bench/cmd/bundlebench -size 2GiB -out docs/BENCHMARKS.md`" + `);
each run appends a dated section.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bundlebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.String("size", "2GiB", "unique bytes of the data set (200MiB for a quick run)")
	seed := fs.Uint64("seed", 1, "data set seed: the same seed gives the same bytes")
	runs := fs.Int("runs", 1, "repetitions of each bundle step; the median is reported")
	bundleBin := fs.String("bundle", "bin/bundle", "the bundle binary (go build -o bin/bundle ./cmd/bundle)")
	registry := fs.String("registry", bench.RegistryBinary, "docker-registry (distribution 2.8) binary")
	tmp := fs.String("tmp", "", "parent of the scratch directory (default $TMPDIR); needs about 4x -size free")
	out := fs.String("out", "", "append the results as a dated section to this Markdown `FILE`")
	scale := fs.String("scale", "", "\"images\": measure many tiny signed images instead of bytes (-images)")
	images := fs.String("images", "100,1000", "comma-separated image counts for -scale images")
	regctl := fs.String("regctl", "", "regctl binary for -scale images' peer copy loop; empty or missing leaves it out")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	n, err := bench.ParseSize(*size)
	if err != nil || *runs < 1 || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bundlebench: bad usage: %v (runs %d, extra args %q)\n", err, *runs, fs.Args())
		return 2
	}
	bin, err := filepath.Abs(*bundleBin)
	if err != nil {
		fmt.Fprintf(stderr, "bundlebench: %s: %v\n", *bundleBin, err)
		return 2
	}
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(stderr, "bundlebench: warning: %v; the bundle steps will fail (go build -o bin/bundle ./cmd/bundle first)\n", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *scale != "" {
		cfg := bench.Config{Bundle: bin, Registry: *registry, TempDir: *tmp, Log: stderr}
		if *regctl != "" {
			// Absolute, as for -bundle: the children run in scratch directories.
			if cfg.Regctl, err = filepath.Abs(*regctl); err != nil {
				fmt.Fprintf(stderr, "bundlebench: %s: %v\n", *regctl, err)
				return 2
			}
		}
		return runScale(ctx, *scale, *images, cfg, *out, stdout, stderr)
	}
	res, err := bench.Run(ctx, bench.Config{Size: n, Seed: *seed, Runs: *runs, Bundle: bin, Registry: *registry, TempDir: *tmp, Log: stderr})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "bundlebench: interrupted; registries stopped and scratch files removed (%v)\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "bundlebench: %v\n", err)
		return 1
	}
	var section bytes.Buffer
	if err := bench.WriteReport(&section, res, bench.ReadMachine(ctx)); err != nil {
		fmt.Fprintf(stderr, "bundlebench: writing the report: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(section.Bytes())
	if *out != "" {
		if err := bench.AppendReport(*out, docHeader, section.Bytes()); err != nil {
			fmt.Fprintf(stderr, "bundlebench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "bundlebench: appended the results to %s\n", *out)
	}
	if res.Failed() {
		fmt.Fprintf(stderr, "bundlebench: some steps failed (FAIL rows above), after %s\n", res.Elapsed())
		return 1
	}
	return 0
}

func runScale(ctx context.Context, scale, images string, cfg bench.Config, out string, stdout, stderr io.Writer) int {
	if scale != "images" {
		fmt.Fprintf(stderr, "bundlebench: -scale %q: the one scale is \"images\"\n", scale)
		return 2
	}
	var ns []int
	for _, f := range strings.Split(images, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 {
			fmt.Fprintf(stderr, "bundlebench: -images %q: want counts of 10 or more, comma-separated\n", images)
			return 2
		}
		ns = append(ns, n)
	}
	started := time.Now().UTC()
	rows, err := bench.RunScale(ctx, cfg, ns)
	if err != nil {
		fmt.Fprintf(stderr, "bundlebench: %v\n", err)
		return 1
	}
	var section bytes.Buffer
	if err := bench.WriteScaleReport(&section, rows, started); err != nil {
		fmt.Fprintf(stderr, "bundlebench: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(section.Bytes())
	if out != "" {
		if err := bench.AppendReport(out, docHeader, section.Bytes()); err != nil {
			fmt.Fprintf(stderr, "bundlebench: %v\n", err)
			return 1
		}
	}
	for _, r := range rows {
		if r.Err != "" {
			return 1
		}
	}
	return 0
}

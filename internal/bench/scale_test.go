package bench

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteScaleReportSetsTheRegctlLoopBesideImport(t *testing.T) {
	ran := ScaleRow{Images: 100, TargetTags: 50,
		Export: Sample{Wall: time.Second, CPU: 500 * time.Millisecond, MaxRSS: 40 << 20}, ExportRequests: 1210,
		Planning: 600 * time.Millisecond, FirstWrite: 40 * time.Millisecond,
		Import: Sample{Wall: 2 * time.Second, CPU: 300 * time.Millisecond, MaxRSS: 30 << 20}, ImportRequests: 2450,
		Regctl: RegctlLoop{Sample: Sample{Wall: 8 * time.Second, CPU: 2500 * time.Millisecond}, SourceRequests: 1200, TargetRequests: 2400,
			Tags: 50, Referrers: "fallback tags as on the source"}}
	skipped := ran
	skipped.Images, skipped.Regctl = 1000, RegctlLoop{Skipped: "no regctl binary given (-regctl)"}
	failed := ran
	failed.Images, failed.Regctl = 10, RegctlLoop{Err: "regctl image copy: exit status 1:\n  unauthorized"}
	rows := []ScaleRow{ran, skipped, failed, {Images: 10000, Err: "export: a|b"}}
	var b strings.Builder
	if err := WriteScaleReport(&b, rows, time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"## Scale in images, 2026-03-04 05:06 UTC\n",
		"`regctl image copy --referrers --digest-tags SRC DST`, one process per image",
		"| tags checked | regctl loop | regctl CPU ms/image | regctl requests/image (source + target) | import / regctl | export+import / regctl |\n" +
			"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
		"| 100 | 1s | 600ms | 40ms | 10.00 | 5.00 | 40.0 MiB | 12.1 (10) | 2s | 20.00 | 3.00 | 30.0 MiB | 24.5 (15) | 50 | 8s | 25.00 | 36.0 (12.0 + 24.0) | 0.25× | 0.38× |\n",
		"| 1000 | 1s | 600ms | 40ms | 1.00 | 0.50 | 40.0 MiB | 1.2 (10) | 2s | 2.00 | 0.30 | 30.0 MiB | 2.5 (15) | 50 | not run | not run | not run | not run | not run |\n",
		"| 10 | 1s | 600ms | 40ms | 100.00 | 50.00 | 40.0 MiB | 121.0 (10) | 2s | 200.00 | 30.00 | 30.0 MiB | 245.0 (15) | 50 | FAIL | - | - | - | - |\n",
		"| 10000 | FAIL: export: a/b ||||||||||||||||||\n",
		"\n- 100 images: after the regctl loop, 50 tags checked; image v0's fallback tags as on the source\n" +
			"- 1000 images: regctl loop not run: no regctl binary given (-regctl)\n" +
			"- 10 images: regctl loop failed: regctl image copy: exit status 1: unauthorized\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	for i, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "|") && strings.Count(line, "|") != 20 {
			t.Errorf("line %d has %d cells, want 19: %s", i, strings.Count(line, "|")-1, line)
		}
	}
}

func TestRegctlLoopIsSkippedWithoutItsBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "regctl")
	for _, tc := range []struct{ bin, says string }{
		{"", "-regctl"},
		{missing, missing},
	} {
		// No registry is started: the nil source would panic if one were.
		l := runRegctl(context.Background(), Config{Regctl: tc.bin, Registry: "/nonexistent"}, t.TempDir(), []string{"HOST/team0/app:v0"}, nil, nil, nil)
		if l.Ran() || l.Err != "" || !strings.Contains(l.Skipped, tc.says) {
			t.Errorf("regctl %q: %+v; want skipped, saying %q", tc.bin, l, tc.says)
		}
	}
}

func TestCompareFallbackFollowsTheImageToItsSignature(t *testing.T) {
	needRegistry(t)
	ctx := context.Background()
	start := func() *Client {
		r, err := StartRegistry(ctx, RegistryBinary, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.RemoveAll() })
		return NewClient(r.Host)
	}
	src, empty := start(), start()
	if _, err := pushTiny(ctx, src, 10); err != nil {
		t.Fatal(err)
	}
	if got := compareFallback(ctx, src, src, "team0/app", "team0/app", "v0"); !strings.HasPrefix(got, "fallback tags as on the source: sha256-") ||
		!strings.Contains(got, "lists the SBOM, sha256-") || !strings.HasSuffix(got, "lists the signature") {
		t.Errorf("source against itself: %q", got)
	}
	if got := compareFallback(ctx, src, empty, "team0/app", "team0/app", "v0"); !strings.HasPrefix(got, "no fallback tag sha256-") ||
		!strings.Contains(got, "the SBOM manifest by digest:") || strings.Contains(got, "as on the source") {
		t.Errorf("against an empty registry: %q", got)
	}
}

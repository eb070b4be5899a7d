package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "2GiB", want: 2 << 30},
		{in: "200MiB", want: 200 << 20},
		{in: "200mib", want: 200 << 20},
		{in: "1.5GB", want: 1.5e9},
		{in: "512KiB", want: 512 << 10},
		{in: "1048576", want: 1 << 20},
		{in: "10B", want: 10},
		{in: "", bad: true},
		{in: "GiB", bad: true},
		{in: "-1MiB", bad: true},
		{in: "2 lots", bad: true},
		{in: "9999999TiB", bad: true},
	} {
		got, err := ParseSize(tc.in)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestBytesReadFindsTheReportField(t *testing.T) {
	for _, tc := range []struct {
		report string
		want   int64
	}{
		{`{"bytesRead": 1234, "images": []}`, 1234},
		{`{"bytes_read": 7}`, 7},
		{`{"readBytes": 0}`, 0},
		{`{"images": []}`, -1},
		{`{"bytesRead": "many"}`, -1},
		{`not json`, -1},
	} {
		if got := bytesRead([]byte(tc.report)); got != tc.want {
			t.Errorf("bytesRead(%s) = %d, want %d", tc.report, got, tc.want)
		}
	}
}

func TestParseCPUInfoTakesTheFirstModelAndCountsProcessors(t *testing.T) {
	info := "processor\t: 0\nmodel name\t: Example CPU @ 3.0GHz\n\nprocessor\t: 1\nmodel name\t: Example CPU @ 3.0GHz\n"
	model, n := parseCPUInfo([]byte(info))
	if model != "Example CPU @ 3.0GHz" || n != 2 {
		t.Errorf("parseCPUInfo = %q, %d; want the model and 2", model, n)
	}
	if model, n := parseCPUInfo(nil); model != "unknown" || n != 0 {
		t.Errorf("parseCPUInfo(nil) = %q, %d", model, n)
	}
}

func TestAppendReportCreatesThenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := AppendReport(path, "# Benchmarks\n", []byte("## first\n")); err != nil {
		t.Fatal(err)
	}
	if err := AppendReport(path, "# ignored\n", []byte("## second\n")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Benchmarks\n\n## first\n\n## second\n"; string(got) != want {
		t.Errorf("file = %q, want %q", got, want)
	}
	if _, err := os.Stat(path + ".partial"); !os.IsNotExist(err) {
		t.Errorf("a .partial file was left behind: %v", err)
	}
}

func TestWriteReportNamesMachineDataSetAndFloors(t *testing.T) {
	res := &Result{Config: Config{Size: 200 << 20, Seed: 1, Runs: 3}, Started: time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC),
		Counts: Counts{Repos: 10, Tags: 14, Images: 16, Referrers: 52, Nested: 16}, UniqueBytes: 200 << 20,
		Rows: []Row{{Step: "floor: x", Sample: Sample{Wall: time.Second}}}}
	var b strings.Builder
	if err := WriteReport(&b, res, Machine{CPU: "Example CPU", CPUs: 2, Nproc: "2", Free: "Mem: 1 2 3", Kernel: "6.1", Go: "go1.26"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## 2026-03-04 05:06 UTC, 200.0 MiB data set", "Example CPU", "nproc 2", "Mem: 1 2 3",
		"3 run(s) per step, median", "52 referrers (16 nested)", "| floor: x", "GET + sha256 + write floor", "VmHWM"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}

func TestAddChecksTakesEachStepAgainstItsFloor(t *testing.T) {
	sec := func(s float64) Sample { return Sample{Wall: time.Duration(s * float64(time.Second))} }
	f := &Floors{Get: Row{Sample: sec(2)}, SHA256: Row{Sample: sec(4)}, GetHashWrite: Row{Sample: sec(5)},
		Unzstd: Row{Sample: sec(1)}, Upload: Row{Sample: sec(10)}}
	rows := []Row{
		{Step: "bundle export .tar", Sample: sec(6)},
		{Step: "bundle export .tar.zst", Sample: sec(9)},
		{Step: "bundle import .tar → empty registry", Sample: sec(11)},
		{Step: "bundle import .tar → full registry", Sample: sec(0.22)},
		{Step: "bundle verify .tar", Sample: sec(2)},
		{Step: "bundle verify .tar.zst", Sample: sec(4)},
		{Step: "bundle import .tar.zst → empty registry", Err: "boom"},
		{Step: "bundle import .tar.zst → full registry", Skipped: true},
	}
	addChecks(rows, f)
	want := []struct {
		value float64
		known bool
		pass  bool
	}{
		{6.0 / 5, true, true},   // against GET + sha256 + write, not its parts
		{9.0 / 6, true, false},  // against export .tar, limit 1.3
		{11.0 / 10, true, true}, // against the upload floor
		{0.02, true, true},      // 2% of the empty import
		{2.0 / 4, true, true},   // against sha256
		{4.0 / 5, true, true},   // against sha256 + zstd -d
		{0, false, false},
		{0, false, false},
	}
	for i, w := range want {
		c := rows[i].Check
		if c == nil {
			t.Errorf("%s: no check", rows[i].Step)
			continue
		}
		if c.Known != w.known || math.Abs(c.Value-w.value) > 1e-9 || c.Pass() != w.pass {
			t.Errorf("%s: value %.4f known %v pass %v; want %.4f %v %v", rows[i].Step, c.Value, c.Known, c.Pass(), w.value, w.known, w.pass)
		}
	}
}

func TestRunChildMeasuresTheChildAndReportsItsStderr(t *testing.T) {
	ctx := context.Background()
	s, err := RunChild(ctx, t.TempDir(), "/bin/sh", "-c", `echo '{"ok":true}'`)
	if err != nil {
		t.Fatal(err)
	}
	if s.Wall <= 0 || s.MaxRSS <= 0 || strings.TrimSpace(string(s.Stdout)) != `{"ok":true}` {
		t.Errorf("sample = wall %v rss %d stdout %q; want all measured", s.Wall, s.MaxRSS, s.Stdout)
	}
	_, err = RunChild(ctx, t.TempDir(), "/bin/sh", "-c", "echo first >&2; echo 'the reason' >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "the reason") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error = %v, want the exit status and the end of stderr", err)
	}
}

func TestRunChildEnvAddsToTheEnvironment(t *testing.T) {
	t.Setenv("BUNDLEBENCH_INHERITED", "kept")
	s, err := RunChildEnv(context.Background(), t.TempDir(), []string{"BUNDLEBENCH_ADDED=set"}, "/bin/sh", "-c", `echo "$BUNDLEBENCH_INHERITED $BUNDLEBENCH_ADDED"`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(s.Stdout)); got != "kept set" {
		t.Errorf("child saw %q, want the inherited and the added variable", got)
	}
}

func TestMedianTakesTheMiddleRunAndTheHighestRSS(t *testing.T) {
	got := Median([]Sample{
		{Wall: 3 * time.Second, CPU: 3, MaxRSS: 10},
		{Wall: 1 * time.Second, CPU: 1, MaxRSS: 30, RSSUpperBound: true},
		{Wall: 2 * time.Second, CPU: 2, MaxRSS: 20},
	})
	if got.Wall != 2*time.Second || got.CPU != 2 || got.MaxRSS != 30 || !got.RSSUpperBound {
		t.Errorf("Median = %+v, want wall 2s, CPU 2 (the same run), RSS 30 as a ceiling (as measured)", got)
	}
	tie := Median([]Sample{{Wall: 1, MaxRSS: 30, RSSUpperBound: true}, {Wall: 2, MaxRSS: 30}, {Wall: 3, MaxRSS: 5}})
	if tie.MaxRSS != 30 || tie.RSSUpperBound {
		t.Errorf("Median of an exact 30 and a ceiling of 30 = %d, bound %v; want the exact figure", tie.MaxRSS, tie.RSSUpperBound)
	}
	if m := Median(nil); m.Wall != 0 || m.MaxRSS != 0 {
		t.Error("Median(nil) is not zero")
	}
}

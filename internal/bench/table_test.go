package bench

import (
	"strings"
	"testing"
	"time"
)

func TestWriteTableAlignsColumnsAndExplainsFailures(t *testing.T) {
	rows := []Row{
		{Step: "floor: sha256", Sample: Sample{Wall: 2 * time.Second, CPU: 2 * time.Second}, Bytes: 2e9},
		{Step: "bundle export .tar", Sample: Sample{Wall: 3 * time.Second, CPU: 4500 * time.Millisecond, MaxRSS: 40 << 20}, Bytes: 2e9,
			Check: &Check{Against: "floor", Value: 1.5, Known: true, Limit: 1.5}, RSSLimit: RSSLimit},
		{Step: "bundle import full", Sample: Sample{Wall: 100 * time.Millisecond, MaxRSS: 80 << 20}, Bytes: 2e9,
			Check: &Check{Against: "import empty", Value: 0.0123, Known: true, Percent: true, Limit: 0.05}, RSSLimit: RSSLimit},
		{Step: "bundle short run", Sample: Sample{Wall: 10 * time.Millisecond, MaxRSS: 34 << 20, RSSUpperBound: true}, RSSLimit: RSSLimit},
		{Step: "bundle verify", Err: "exit status 1:\n  bad\tdigest", RSSLimit: RSSLimit},
		{Step: "bundle inspect", Skipped: true, Err: "no archive"},
	}
	var b strings.Builder
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"| step               |  wall |   CPU | peak RSS MiB |    MB/s | against      | ratio | target               | result |\n" +
		"| ------------------ | ----: | ----: | -----------: | ------: | ------------ | ----: | -------------------- | ------ |\n" +
		"| floor: sha256      | 2.00s | 2.00s |            - |  1000.0 |              |       |                      |        |\n" +
		"| bundle export .tar | 3.00s | 4.50s |         40.0 |   666.7 | floor        | 1.50× | ≤ 1.5×, RSS ≤ 64 MiB | PASS   |\n" +
		"| bundle import full | 0.10s | 0.00s |         80.0 | 20000.0 | import empty | 1.23% | < 5%, RSS ≤ 64 MiB   | MISS   |\n" +
		"| bundle short run   | 0.01s | 0.00s |       ≤ 34.0 |       - |              |       | RSS ≤ 64 MiB         | PASS   |\n" +
		"| bundle verify      |     - |     - |            - |       - | -            |     - | -                    | FAIL   |\n" +
		"| bundle inspect     |     - |     - |            - |       - | -            |     - | -                    | SKIP   |\n" +
		"\n" +
		"- bundle verify: exit status 1: bad digest\n" +
		"- bundle inspect: skipped: no archive\n"
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestRowResult(t *testing.T) {
	pass := &Check{Value: 1, Known: true, Limit: 1.5}
	miss := &Check{Value: 2, Known: true, Limit: 1.5}
	for _, tc := range []struct {
		name string
		row  Row
		want string
	}{
		{"floor", Row{Sample: Sample{Wall: time.Second}}, ""},
		{"failed floor", Row{Err: "boom"}, "FAIL"},
		{"within target and memory", Row{Check: pass, RSSLimit: RSSLimit, Sample: Sample{MaxRSS: RSSLimit}}, "PASS"},
		{"over target", Row{Check: miss, RSSLimit: RSSLimit}, "MISS"},
		{"over memory", Row{Check: pass, RSSLimit: RSSLimit, Sample: Sample{MaxRSS: RSSLimit + 1}}, "MISS"},
		{"unknown ratio", Row{Check: &Check{Limit: 1}, RSSLimit: RSSLimit}, "MISS"},
		{"memory target only", Row{RSSLimit: RSSLimit, Sample: Sample{MaxRSS: 1}}, "PASS"},
		{"memory ceiling within the limit", Row{RSSLimit: RSSLimit, Sample: Sample{MaxRSS: RSSLimit, RSSUpperBound: true}}, "PASS"},
		{"memory ceiling over the limit", Row{RSSLimit: RSSLimit, Sample: Sample{MaxRSS: RSSLimit + 1, RSSUpperBound: true}}, "MISS"},
		{"skipped", Row{Skipped: true, Err: "x", Check: pass}, "SKIP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.row.Result(); got != tc.want {
				t.Errorf("Result() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckPercentIsStrictAndRatioIsNot(t *testing.T) {
	for _, tc := range []struct {
		c    Check
		want bool
	}{
		{Check{Value: 1.2, Known: true, Limit: 1.2}, true},
		{Check{Value: 1.2001, Known: true, Limit: 1.2}, false},
		{Check{Value: 0.05, Known: true, Percent: true, Limit: 0.05}, false},
		{Check{Value: 0.0499, Known: true, Percent: true, Limit: 0.05}, true},
		{Check{Value: 0, Known: false, Limit: 1}, false},
	} {
		if got := tc.c.Pass(); got != tc.want {
			t.Errorf("%+v: Pass() = %v, want %v", tc.c, got, tc.want)
		}
	}
}

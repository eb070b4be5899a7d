package bench

import (
	"fmt"
	"io"
	"strings"
)

// RSSLimit is the memory ceiling for every bundle command.
const RSSLimit = 64 << 20

// Check compares a step with its floor against the target.
type Check struct {
	Against string  // what the ratio is taken against, shown in the table
	Value   float64 // the ratio; a fraction when Percent
	Known   bool    // false when the floor or the value could not be measured
	Percent bool    // show as a percentage, pass when strictly below Limit
	Limit   float64 // pass when Value <= Limit (or < for percentages)
}

// Pass reports whether the check met its target.
func (c Check) Pass() bool {
	if !c.Known {
		return false
	}
	if c.Percent {
		return c.Value < c.Limit
	}
	return c.Value <= c.Limit
}

func (c Check) ratio() string {
	if !c.Known {
		return "n/a"
	}
	if c.Percent {
		return fmt.Sprintf("%.2f%%", 100*c.Value)
	}
	return fmt.Sprintf("%.2f×", c.Value)
}

func (c Check) target() string {
	if c.Percent {
		return fmt.Sprintf("< %g%%", 100*c.Limit)
	}
	return fmt.Sprintf("≤ %g×", c.Limit)
}

// Row is one line of the results table: a floor (no Check) or a bundle step.
type Row struct {
	Step     string
	Sample   Sample
	Bytes    int64 // what MB/s is computed from; 0 shows "-"
	Check    *Check
	RSSLimit int64  // 0: no memory target for this row
	Err      string // the step failed, or why it was skipped
	Skipped  bool   // not run because a step it needs failed
}

// Result is PASS or MISS for a step with targets, FAIL when it did not
// run through, SKIP when a step it needs failed, and empty for a floor
// that worked.
func (r Row) Result() string {
	switch {
	case r.Skipped:
		return "SKIP"
	case r.Err != "":
		return "FAIL"
	case r.Check == nil && r.RSSLimit == 0:
		return ""
	case r.Check != nil && !r.Check.Pass():
		return "MISS"
	case r.RSSLimit > 0 && r.Sample.MaxRSS > r.RSSLimit:
		return "MISS" // a ceiling above the limit does not show the target met either
	}
	return "PASS"
}

func (r Row) cells() []string {
	if r.Err != "" || r.Skipped {
		return []string{r.Step, "-", "-", "-", "-", "-", "-", "-", r.Result()}
	}
	s := r.Sample
	rss, mbs := "-", "-"
	if s.MaxRSS > 0 {
		rss = fmt.Sprintf("%.1f", float64(s.MaxRSS)/(1<<20))
	}
	if s.MaxRSS > 0 && s.RSSUpperBound {
		rss = "≤ " + rss
	}
	if r.Bytes > 0 && s.Wall > 0 {
		mbs = fmt.Sprintf("%.1f", float64(r.Bytes)/1e6/s.Wall.Seconds())
	}
	against, ratio, target := "", "", ""
	if r.Check != nil {
		against, ratio, target = r.Check.Against, r.Check.ratio(), r.Check.target()
	}
	if r.RSSLimit > 0 {
		target = strings.TrimPrefix(target+", RSS ≤ "+fmt.Sprint(r.RSSLimit>>20)+" MiB", ", ")
	}
	return []string{r.Step, seconds(s.Wall), seconds(s.CPU), rss, mbs, against, ratio, target, r.Result()}
}

func seconds(d interface{ Seconds() float64 }) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}

var tableHeader = []string{"step", "wall", "CPU", "peak RSS MiB", "MB/s", "against", "ratio", "target", "result"}

// WriteTable prints rows as a Markdown table with aligned columns (it reads
// the same in a terminal and in docs/BENCHMARKS.md), then one line per
// failed step saying why.
func WriteTable(w io.Writer, rows []Row) error {
	all := [][]string{tableHeader}
	for _, r := range rows {
		all = append(all, r.cells())
	}
	width := make([]int, len(tableHeader))
	for _, cells := range all {
		for i, c := range cells {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if numeric(i) {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		b.WriteString("\n")
	}
	line(all[0])
	b.WriteString("|")
	for i, wd := range width {
		if numeric(i) {
			b.WriteString(" " + strings.Repeat("-", wd-1) + ": |")
		} else {
			b.WriteString(" " + strings.Repeat("-", wd) + " |")
		}
	}
	b.WriteString("\n")
	for _, cells := range all[1:] {
		line(cells)
	}
	var notes []string
	for _, r := range rows {
		switch {
		case r.Skipped:
			notes = append(notes, fmt.Sprintf("- %s: skipped: %s", r.Step, oneLine(r.Err)))
		case r.Err != "":
			notes = append(notes, fmt.Sprintf("- %s: %s", r.Step, oneLine(r.Err)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// numeric columns (wall, CPU, RSS, MB/s, ratio) are right-aligned.
func numeric(col int) bool { return col >= 1 && col <= 4 || col == 6 }

// oneLine keeps a failure readable inside a Markdown list.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

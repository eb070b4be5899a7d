package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ParseSize reads sizes such as 2GiB, 200MiB, 512KiB, 1.5GB or 1048576.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(strings.ToLower(t), strings.ToLower(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*mult > 1<<50 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit, such as 2GiB or 200MiB", s)
	}
	return int64(v * mult), nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Machine describes where a run happened.
type Machine struct {
	CPU    string // model name from /proc/cpuinfo
	CPUs   int    // processors listed in /proc/cpuinfo
	Nproc  string // nproc's answer: what this process may use
	Free   string // free -m
	Kernel string
	Go     string
}

// ReadMachine gathers the machine description; missing pieces read "unknown".
func ReadMachine(ctx context.Context) Machine {
	m := Machine{CPU: "unknown", Nproc: "unknown", Free: "unknown", Kernel: "unknown", Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU, m.CPUs = parseCPUInfo(data)
	}
	if out, err := exec.CommandContext(ctx, "nproc").Output(); err == nil {
		m.Nproc = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "free", "-m").Output(); err == nil {
		m.Free = strings.TrimRight(string(out), "\n")
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

func parseCPUInfo(data []byte) (model string, count int) {
	model = "unknown"
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "processor":
			count++
		case "model name":
			if model == "unknown" {
				model = strings.TrimSpace(val)
			}
		}
	}
	return model, count
}

// WriteReport writes a dated Markdown section: machine, data set, table,
// and what each ratio means.
func WriteReport(w io.Writer, res *Result, m Machine) error {
	c := res.Counts
	var b bytes.Buffer
	fmt.Fprintf(&b, "## %s, %s data set\n\n", res.Started.Format("2006-01-02 15:04 UTC"), humanBytes(res.Config.Size))
	fmt.Fprintf(&b, "Machine: %s, %d CPU(s) in /proc/cpuinfo, nproc %s, Linux %s, %s; %d run(s) per step, median.\n\n",
		m.CPU, m.CPUs, m.Nproc, m.Kernel, m.Go, res.Config.Runs)
	fmt.Fprintf(&b, "```\n$ free -m\n%s\n```\n\n", m.Free)
	fmt.Fprintf(&b, "Data set (seed %d): %d repositories, %d tags, %d images (%d Docker schema 2), %d amd64+arm64 indexes, "+
		"%d gzip + %d text layers (%d shared across repositories), %d referrers (%d nested), %s unique (%d bytes).\n\n",
		res.Config.Seed, c.Repos, c.Tags, c.Images, c.Docker, c.Indexes, c.GzipLayers, c.TextLayers, c.SharedAcrossRepos,
		c.Referrers, c.Nested, humanBytes(res.UniqueBytes), res.UniqueBytes)
	if err := WriteTable(&b, res.Rows); err != nil {
		return err
	}
	b.WriteString(legend)
	_, err := w.Write(b.Bytes())
	return err
}

// legend defines the floors and ratios, so that a reader of the table need
// not read the harness.
const legend = `
MB/s is the data set's unique bytes over wall time (MB = 10^6 bytes). Ratios are wall-time ratios:

- export .tar against the GET + sha256 + write floor: every blob and manifest read from the registry
  in order, hashed and checked while it is written into one file, one fsync at the end: the
  work an export cannot avoid. The GET and sha256 floors are its parts, shown for information.
- export .tar.zst against export .tar: the price of compression on the same run.
- import → empty against the upload floor: the same bytes in one monolithic PUT stream each into an
  empty docker-registry; import → full is the second import into the same registry (all skipped),
  as a percentage of the first.
- verify .tar against the sha256 floor; verify .tar.zst against sha256 + zstd -d floors.
- inspect: bytes the command read, from its --json report, as a percentage of the archive size.
- sync (issue 13): after a bundle of every tag, 1 layer in 10 gets new bytes (new configs and
  manifests above it) and is pushed; the next sync is exported in full and with --since the first
  bundle, each with an empty cache. Its check is the incremental archive's size as a percentage of
  the full one's; its MB/s is the incremental archive's bytes over its wall time.
- RSS is the child's own peak resident set: the highest VmHWM of /proc/PID/status, read every 5 ms
  while it runs, or its ru_maxrss when that is above the harness's own peak (only the child can have
  put it there). "≤" marks a child gone before its first read: ru_maxrss alone, which also counts the
  harness's memory (Go starts children with vfork), so only a ceiling. Floors run in the harness or
  in cp/tar/zstd and have no memory target.
`

// AppendReport adds section to the Markdown file at path (creating it with
// header when missing), through a temporary file and a rename so a crash
// never leaves half a file.
func AppendReport(path, header string, section []byte) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		old, err = []byte(header), nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		old = append(old, '\n')
	}
	if len(old) > 0 {
		old = append(old, '\n')
	}
	return writeFileAtomic(path, append(old, section...))
}

// Elapsed is how long a run took so far, for the closing log line.
func (r *Result) Elapsed() time.Duration { return time.Since(r.Started).Round(time.Second) }

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Sample is one timed run.
type Sample struct {
	Wall   time.Duration
	CPU    time.Duration // user + system
	MaxRSS int64         // bytes; 0 when not measured (work done in this process)
	Stdout []byte        // a child's stdout (its --json report)
}

// maxReport bounds what a child may print on stdout.
const maxReport = 4 << 20

// RunChild runs name with args as a child process and measures it. The end
// of its stderr goes into the error, so a failure says why.
func RunChild(ctx context.Context, dir, name string, args ...string) (Sample, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out := &limitedBuffer{max: maxReport}
	errTail := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, errTail
	start := time.Now()
	err := cmd.Run()
	s := Sample{Wall: time.Since(start), Stdout: out.buf.Bytes()}
	if ru, ok := usageOf(cmd.ProcessState); ok {
		s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.MaxRSS = ru.Maxrss << 10 // Linux reports KiB
	}
	if err != nil {
		if tail := lastLines(errTail.String(), 5); tail != "" {
			return s, fmt.Errorf("%s: %w: %s", commandLine(name, args), err, tail)
		}
		return s, fmt.Errorf("%s: %w", commandLine(name, args), err)
	}
	return s, nil
}

func usageOf(ps *os.ProcessState) (*syscall.Rusage, bool) {
	if ps == nil {
		return nil, false
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	return ru, ok && ru != nil
}

// RunSelf times fn, work done in this process, with its CPU time from
// getrusage(RUSAGE_SELF). Other goroutines of the harness are idle while a
// floor runs, so the difference is fn's.
func RunSelf(fn func() error) (Sample, error) {
	before := selfCPU()
	start := time.Now()
	err := fn()
	return Sample{Wall: time.Since(start), CPU: selfCPU() - before}, err
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Median folds repeated runs into one: the run with the median wall time
// (its CPU with it, so the two stay from the same run), and the highest
// peak RSS of all, because the memory target is a ceiling.
func Median(samples []Sample) Sample {
	if len(samples) == 0 {
		return Sample{}
	}
	s := slices.Clone(samples)
	slices.SortFunc(s, func(a, b Sample) int { return int(a.Wall - b.Wall) })
	m := s[len(s)/2]
	for _, x := range s {
		m.MaxRSS = max(m.MaxRSS, x.MaxRSS)
	}
	return m
}

func lastLines(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines == n {
				return s[i+1:]
			}
		}
	}
	return s
}

// commandLine names a command for an error: the program and its first
// argument (the subcommand), not the dozens of references after it.
func commandLine(name string, args []string) string {
	s := filepath.Base(name)
	if len(args) > 0 {
		s += " " + args[0]
	}
	return s
}

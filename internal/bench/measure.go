package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Sample is one timed run.
type Sample struct {
	Wall   time.Duration
	CPU    time.Duration // user + system
	MaxRSS int64         // bytes; 0 when not measured (work done in this process)
	// RSSUpperBound says MaxRSS is only a ceiling: the child was gone before
	// its memory could be read, and ru_maxrss counts the harness's too.
	RSSUpperBound bool
	Stdout        []byte // a child's stdout (its --json report)
}

// add counts s into t as one more of a run of children one after the
// other: times add up, the peak RSS is the highest.
func (t *Sample) add(s Sample) {
	t.Wall += s.Wall
	t.CPU += s.CPU
	if s.MaxRSS >= t.MaxRSS {
		t.MaxRSS, t.RSSUpperBound = s.MaxRSS, s.RSSUpperBound
	}
}

// maxReport bounds what a child may print on stdout: the --json report of
// an export of 10,000 images is about 5 MiB.
const maxReport = 64 << 20

// RunChild runs name with args as a child process and measures it. The end
// of its stderr goes into the error, so a failure says why.
func RunChild(ctx context.Context, dir, name string, args ...string) (Sample, error) {
	return RunChildEnv(ctx, dir, nil, name, args...)
}

// RunChildEnv is RunChild with env ("KEY=value") added to the harness's
// environment, for a peer tool that reads its configuration from there.
func RunChildEnv(ctx context.Context, dir string, env []string, name string, args ...string) (Sample, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out := &limitedBuffer{max: maxReport}
	errTail := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, errTail
	s, err := runMeasured(cmd)
	s.Stdout = out.buf.Bytes()
	if err != nil {
		if tail := lastLines(errTail.String(), 5); tail != "" {
			return s, fmt.Errorf("%s: %w: %s", commandLine(name, args), err, tail)
		}
		return s, fmt.Errorf("%s: %w", commandLine(name, args), err)
	}
	return s, nil
}

// rssPollEvery is how often a running child's VmHWM is read. Reading
// /proc/PID/status costs microseconds, so this takes no measurable share of
// a core; what it can miss is growth in the last interval before exit.
const rssPollEvery = 5 * time.Millisecond

// runMeasured starts cmd and waits for it, timing it and following its
// memory while it runs.
//
// The peak RSS cannot come from ru_maxrss alone: Go starts children with
// clone(CLONE_VM|CLONE_VFORK), so until execve the child runs on the
// harness's address space, and execve folds that address space's
// high-water mark into the child's maxrss. Every child would then report at
// least the harness's own peak. VmHWM in /proc/PID/status is the high-water
// mark of the child's own address space, monotonic, so polling it loses
// only the last interval's growth. ru_maxrss is still used when it is above
// what the harness ever held: then only the child's own memory can have put
// it there, and it also counts that last interval.
func runMeasured(cmd *exec.Cmd) (Sample, error) {
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Sample{}, err
	}
	polled := followVmHWM(cmd.Process.Pid)
	// Read after Start: the harness's mark can only have grown since the
	// child's execve recorded it.
	harness, _ := readVmHWM(os.ReadFile("/proc/self/status"))
	err := cmd.Wait()
	s := Sample{Wall: time.Since(start)}
	peak := polled()
	if ru, ok := usageOf(cmd.ProcessState); ok {
		s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.MaxRSS, s.RSSUpperBound = childPeak(peak, ru.Maxrss<<10, harness) // Linux reports KiB
	} else {
		s.MaxRSS = peak
	}
	return s, err
}

// rssCounterSlack covers the kernel's approximate (per-CPU batched) RSS
// counters, so that the harness's own mark read twice is never taken for
// the child's.
const rssCounterSlack = 4 << 20

// childPeak picks a child's peak RSS from the highest VmHWM polled (0: none
// read), its ru_maxrss and the harness's own VmHWM, all in bytes.
func childPeak(polled, rusage, harness int64) (peak int64, upperBound bool) {
	switch {
	case harness > 0 && rusage > harness+rssCounterSlack:
		return max(polled, rusage), false
	case polled > 0:
		return polled, false
	}
	return rusage, rusage > 0
}

// followVmHWM reads the VmHWM of process pid now and then every
// rssPollEvery until it exits; the returned func stops that and gives the
// highest value read, 0 if none was. The process must not have been waited
// for yet, so that pid is still its own.
func followVmHWM(pid int) func() int64 {
	// A handle on /proc/PID keeps naming this process after it is reaped:
	// reads then fail instead of reaching a new process given the same pid.
	proc, err := os.OpenRoot(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return func() int64 { return 0 }
	}
	// The first read is made here rather than in the goroutine, to come
	// before a child as short as a shell script has exited.
	first, _ := readVmHWM(proc.ReadFile("status"))
	stop, peak := make(chan struct{}), make(chan int64, 1)
	go func() { peak <- pollVmHWM(proc, rssPollEvery, stop) }()
	return func() int64 {
		close(stop)
		p := <-peak
		proc.Close()
		return max(first, p)
	}
}

// pollVmHWM returns the highest VmHWM of the process at proc, read at once
// and then every interval until it has exited or stop is closed.
func pollVmHWM(proc *os.Root, every time.Duration, stop <-chan struct{}) int64 {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var peak int64
	for {
		hwm, ok := readVmHWM(proc.ReadFile("status"))
		if !ok {
			return peak // exited: a zombie's status has no Vm lines
		}
		peak = max(peak, hwm)
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// readVmHWM takes the VmHWM line of a /proc/PID/status, in bytes; false
// when there is none (the process has exited) or it could not be read.
func readVmHWM(status []byte, err error) (int64, bool) {
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		kb, ok := bytes.CutSuffix(bytes.TrimSpace(rest), []byte(" kB"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(kb)), 10, 64)
		if !ok || err != nil {
			return 0, false
		}
		return n << 10, true
	}
	return 0, false
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
		// An exact figure is preferred to an equal ceiling.
		if x.MaxRSS > m.MaxRSS || x.MaxRSS == m.MaxRSS && !x.RSSUpperBound {
			m.MaxRSS, m.RSSUpperBound = x.MaxRSS, x.RSSUpperBound
		}
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

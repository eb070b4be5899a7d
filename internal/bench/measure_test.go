package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child whose memory is measured: with
// touchEnv set it touches that many MiB and exits, or with holdEnv too,
// says "touched" and keeps the memory until its stdin closes.
const (
	touchEnv = "BUNDLEBENCH_TEST_TOUCH_MIB"
	holdEnv  = "BUNDLEBENCH_TEST_HOLD"
)

func TestMain(m *testing.M) {
	if mib := os.Getenv(touchEnv); mib != "" {
		os.Exit(touchAndExit(mib, os.Getenv(holdEnv) != ""))
	}
	os.Exit(m.Run())
}

func touchAndExit(mib string, hold bool) int {
	n, err := strconv.Atoi(mib)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", touchEnv, mib, err)
		return 2
	}
	b := touch(n << 20)
	if hold {
		fmt.Println("touched")
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	return int(b[len(b)-1]) - 1 // 0, and b stays live until here
}

// touch maps n bytes and writes to every page, so that all of them are
// resident. The mapping is outside the Go heap, so that the race detector
// adds no shadow memory for it and the figure is n under -race too.
func touch(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(fmt.Sprintf("mapping %d bytes: %v", n, err))
	}
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	b[n-1] = 1
	return b
}

// harnessMiB is what the test process touches before starting children:
// far more than they use, so that a figure inflated by it stands out.
const harnessMiB = 200

// inflateHarness raises this process's RSS high-water mark to over
// harnessMiB. The mark stays after the memory is freed, which is all the
// vfork inflation needs.
func inflateHarness(t *testing.T) {
	t.Helper()
	if err := syscall.Munmap(touch(harnessMiB << 20)); err != nil {
		t.Fatal(err)
	}
	hwm, ok := readVmHWM(os.ReadFile("/proc/self/status"))
	if !ok || hwm < harnessMiB<<20 {
		t.Fatalf("the test process's VmHWM is %d bytes (read %v), want at least %d MiB", hwm, ok, harnessMiB)
	}
}

// childSlack is a Go test binary's own resident memory on top of what the
// helper touches (more under -race).
const childSlack = 48 << 20

func helperCmd(t *testing.T, mib int, hold bool) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", touchEnv, mib))
	if hold {
		cmd.Env = append(cmd.Env, holdEnv+"=1")
	}
	return cmd
}

func TestPollVmHWMReadsTheChildsOwnMemoryAndStopsWhenItIsGone(t *testing.T) {
	inflateHarness(t)
	const childMiB = 64
	cmd := helperCmd(t, childMiB, true)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc, err := os.OpenRoot(fmt.Sprintf("/proc/%d", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "touched\n" {
		t.Fatalf("the helper said %q (%v), want touched", line, err)
	}
	// A closed stop makes it one read: the helper holds its memory now.
	stopNow := make(chan struct{})
	close(stopNow)
	got := pollVmHWM(proc, time.Hour, stopNow)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("VmHWM of a child holding %d MiB: %.1f MiB", childMiB, float64(got)/(1<<20))
	if got < childMiB<<20 || got > childMiB<<20+childSlack {
		t.Errorf("VmHWM of a child holding %d MiB = %.1f MiB, want %d to %d MiB (this process holds over %d MiB)",
			childMiB, float64(got)/(1<<20), childMiB, (childMiB<<20+childSlack)>>20, harnessMiB)
	}
	// The premise: rusage would have said the harness's figure.
	if ru, ok := usageOf(cmd.ProcessState); !ok || ru.Maxrss<<10 < harnessMiB<<20 {
		t.Errorf("ru_maxrss of the child = %d KiB: no longer inflated by the harness's %d MiB, so runMeasured's reason is stale",
			ru.Maxrss, harnessMiB)
	}
	// Reaped: the loop must end by itself (an open stop would block for an
	// hour otherwise) and must not read whoever gets the pid next.
	if got := pollVmHWM(proc, time.Hour, make(chan struct{})); got != 0 {
		t.Errorf("pollVmHWM after the child was reaped = %d, want 0", got)
	}
}

func TestRunChildReportsTheChildsPeakNotTheHarnesss(t *testing.T) {
	inflateHarness(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mib  int
	}{
		// Below the harness's mark ru_maxrss says nothing, so the figure
		// is what polling saw; a child this short may exit before the first
		// read, and then the figure must say it is only a bound.
		{"smaller than the harness", 32},
		// Above it ru_maxrss is the child's own and exact, also for growth
		// after the last read.
		{"larger than the harness", 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(touchEnv, strconv.Itoa(tc.mib))
			s, err := RunChild(context.Background(), t.TempDir(), self, "-test.run=^$")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("child touching %d MiB: MaxRSS %.1f MiB, bound %v", tc.mib, float64(s.MaxRSS)/(1<<20), s.RSSUpperBound)
			switch {
			case s.RSSUpperBound && s.MaxRSS >= harnessMiB<<20:
				t.Logf("the child exited before its memory was read: %.1f MiB as a bound", float64(s.MaxRSS)/(1<<20))
			case s.RSSUpperBound:
				t.Errorf("MaxRSS %.1f MiB marked as a bound, but it is below the harness's %d MiB", float64(s.MaxRSS)/(1<<20), harnessMiB)
			case s.MaxRSS <= 0 || s.MaxRSS > int64(tc.mib)<<20+childSlack:
				t.Errorf("MaxRSS of a child touching %d MiB = %.1f MiB, want more than 0 and at most %d MiB",
					tc.mib, float64(s.MaxRSS)/(1<<20), (int64(tc.mib)<<20+childSlack)>>20)
			case tc.mib > harnessMiB && s.MaxRSS < int64(tc.mib)<<20:
				t.Errorf("MaxRSS of a child touching %d MiB = %.1f MiB, want all of it", tc.mib, float64(s.MaxRSS)/(1<<20))
			}
		})
	}
}

func TestChildPeakTrustsRusageOnlyAboveTheHarness(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name                    string
		polled, rusage, harness int64
		want                    int64
		bound                   bool
	}{
		{"rusage is the harness's: take the poll", 20 * mib, 35 * mib, 35 * mib, 20 * mib, false},
		{"rusage within the counters' slack of the harness", 20 * mib, 38 * mib, 35 * mib, 20 * mib, false},
		{"rusage above the harness: the child's own, with its last growth", 90 * mib, 100 * mib, 35 * mib, 100 * mib, false},
		{"no poll, rusage above the harness", 0, 100 * mib, 35 * mib, 100 * mib, false},
		{"no poll, rusage may be the harness's", 0, 35 * mib, 35 * mib, 35 * mib, true},
		{"harness unknown: rusage proves nothing", 20 * mib, 100 * mib, 0, 20 * mib, false},
		{"nothing measured", 0, 0, 35 * mib, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, bound := childPeak(tc.polled, tc.rusage, tc.harness)
			if got != tc.want || bound != tc.bound {
				t.Errorf("childPeak(%d, %d, %d) = %d, %v; want %d, %v", tc.polled, tc.rusage, tc.harness, got, bound, tc.want, tc.bound)
			}
		})
	}
}

func TestReadVmHWMTakesTheLineInBytes(t *testing.T) {
	status := "Name:\tbundle\nVmPeak:\t  123456 kB\nVmHWM:\t   34560 kB\nVmRSS:\t   30000 kB\n"
	for _, tc := range []struct {
		name   string
		status string
		err    error
		want   int64
		ok     bool
	}{
		{"running", status, nil, 34560 << 10, true},
		{"zombie: no Vm lines", "Name:\tbundle\nState:\tZ (zombie)\n", nil, 0, false},
		{"unreadable", "", os.ErrNotExist, 0, false},
		{"garbled", "VmHWM:\tlots kB\n", nil, 0, false},
		{"no unit", "VmHWM:\t12\n", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := readVmHWM([]byte(tc.status), tc.err)
			if got != tc.want || ok != tc.ok {
				t.Errorf("readVmHWM = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

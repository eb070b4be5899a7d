// Command bundle carries container images and everything attached to them
// (signatures, SBOMs, attestations) across an air gap: export to one
// OCI-layout archive, verify and inspect it offline, import it into a
// registry. See README.md and DESIGN.md "The command line".
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync/atomic"
	"syscall"

	"github.com/sirupsen/logrus"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	// The first SIGINT or SIGTERM cancels the work, which stops cleanly
	// (a partial archive salvaged, nothing half-pushed); a second one kills
	// the process the default way. The exit status is the shell's
	// convention for a signal: 128 + its number (130, 143).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	var caught atomic.Value
	go func() {
		s := <-sigs
		caught.Store(s)
		signal.Stop(sigs)
		cancel()
	}()
	// containerd and distribution log through the process-wide logrus
	// logger: every 404 of a probe, every request served. The commands report
	// what matters themselves; let through only errors.
	logrus.SetLevel(logrus.ErrorLevel)
	setMemoryLimit()
	stopProfile := startCPUProfile(os.Getenv("BUNDLE_CPUPROFILE"), os.Args)
	code := run(ctx, os.Args, streams{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stopProfile()
	cancel()
	if s, ok := caught.Load().(syscall.Signal); ok && code != exitOK {
		code = 128 + int(s)
	}
	os.Exit(code)
}

// memoryLimit is a soft limit on the heap, far above what bundle holds
// live (buffers, frames in flight, the graph: tens of MiB even for 10,000
// images) so that the collector runs at its normal pace; it only stops a
// heap that would grow past it from doing so. A tight limit kept the
// resident size small but made the collector run all the time on large
// graphs (64% of an export's CPU at 2,500 images). GOMEMLIMIT overrides it.
const memoryLimit = 192 << 20

func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

// startCPUProfile is a hidden hook for measuring the real binary:
// BUNDLE_CPUPROFILE=PREFIX writes PREFIX.<command>.<pid>, one file per run,
// since a benchmark runs several commands against the same environment.
func startCPUProfile(prefix string, args []string) func() {
	if prefix == "" {
		return func() {}
	}
	cmd := "bundle"
	if len(args) > 1 {
		cmd = args[1]
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%d", prefix, cmd, os.Getpid()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "bundle: BUNDLE_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "bundle: BUNDLE_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// Command bundle carries container images and everything attached to them
// (signatures, SBOMs, attestations) across an air gap: export to one
// OCI-layout archive, verify and inspect it offline, import it into a
// registry. See README.md and DESIGN.md "The command line".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal has cancelled the work, a second one kills the
	// process the default way.
	go func() {
		<-ctx.Done()
		stop()
	}()
	// containerd and distribution log through the process-wide logrus
	// logger: every 404 of a probe, every request served. The commands report
	// what matters themselves; let through only errors.
	logrus.SetLevel(logrus.ErrorLevel)
	code := run(ctx, os.Args, streams{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

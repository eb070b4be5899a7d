package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/serve"
)

// shutdownGrace is how long requests in flight get to finish after a signal.
const shutdownGrace = 30 * time.Second

func serveCommand(s streams, parseOnly bool) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run a local OCI registry (plain HTTP) storing its content in DIR",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "storage `DIR`; kept across restarts", TakesFile: true},
			&cli.StringFlag{Name: "addr", Value: serve.DefaultAddr, Usage: "listen on `HOST:PORT` (port 0 picks a free one)"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, "the arguments"); err != nil {
				return err
			}
			if c.Args().Present() {
				return usagef(c, "serve takes no arguments, got %q", c.Args().First())
			}
			if c.String("dir") == "" {
				return usagef(c, "missing --dir DIR (where the registry keeps its content)")
			}
			if parseOnly {
				return nil
			}
			return serve.Run(c.Context, serve.Options{Dir: c.String("dir"), Addr: c.String("addr")}, shutdownGrace,
				func(addr string) {
					// stdout gets the bare address, for scripts; stderr the human line.
					fmt.Fprintln(s.out, addr)
					fmt.Fprintf(s.err, "serving an OCI registry on http://%s from %s; Ctrl-C stops it\n", addr, c.String("dir"))
				})
		},
	}
}

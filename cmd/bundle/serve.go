package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/serve"
)

// shutdownGrace is how long requests in flight get to finish after a signal.
const shutdownGrace = 30 * time.Second

func serveCommand(s streams, parseOnly bool) *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "run an OCI registry: read-only straight from bundle FILEs, or storing its content in --dir DIR",
		ArgsUsage: "[FILE...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "storage `DIR`; kept across restarts (instead of FILEs)", TakesFile: true},
			&cli.StringFlag{Name: "prefix", Usage: "serve the FILEs' repositories under `PREFIX`, as import's --target HOST/PREFIX"},
			&cli.StringFlag{Name: "addr", Value: serve.DefaultAddr, Usage: "listen on `HOST:PORT` (port 0 picks a free one)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "access log on stderr as `text|json`"},
		},
		Action: func(c *cli.Context) error {
			files, err := args(c, 0, "the arguments")
			if err != nil {
				return err
			}
			dir := c.String("dir")
			switch {
			case dir != "" && len(files) > 0:
				return usagef(c, "give bundle FILEs or --dir DIR, not both (got --dir %s and %s)", dir, files[0])
			case dir == "" && len(files) == 0:
				return usagef(c, "missing FILE to serve, or --dir DIR (where the registry keeps its content)")
			case dir != "" && c.String("prefix") != "":
				return usagef(c, "--prefix applies to FILEs, not to --dir")
			}
			var handler slog.Handler
			switch c.String("log-format") {
			case "text":
				handler = slog.NewTextHandler(s.err, nil)
			case "json":
				handler = slog.NewJSONHandler(s.err, nil)
			default:
				return usagef(c, "--log-format %q: want text or json", c.String("log-format"))
			}
			if parseOnly {
				return nil
			}
			what := dir
			if dir == "" {
				what = strings.Join(files, ", ")
			}
			opts := serve.Options{Dir: dir, Files: files, Prefix: c.String("prefix"), Addr: c.String("addr"),
				Log: slog.New(handler), Notice: func(format string, args ...any) { fmt.Fprintf(s.err, format+"\n", args...) }}
			return serve.Run(c.Context, opts, shutdownGrace,
				func(addr string) {
					// stdout gets the bare address, for scripts; stderr the human line.
					fmt.Fprintln(s.out, addr)
					fmt.Fprintf(s.err, "serving an OCI registry on http://%s from %s; Ctrl-C stops it\n", addr, what)
				})
		},
	}
}

package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
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
			&cli.StringFlag{Name: "htpasswd", Usage: "require Basic auth from the users of this bcrypt htpasswd `FILE` (htpasswd -B)", TakesFile: true},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS with this PEM certificate `FILE` (with --tls-key)", TakesFile: true},
			&cli.StringFlag{Name: "tls-key", Usage: "the PEM private key `FILE` of --tls-cert", TakesFile: true},
			&cli.BoolFlag{Name: "read-only", Usage: "with --dir: refuse every push and delete (FILEs are always read-only)"},
			&cli.BoolFlag{Name: "allow-delete", Usage: "with --dir: let DELETE remove manifests and blobs (off by default)"},
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
			case dir == "" && (c.Bool("read-only") || c.Bool("allow-delete")):
				return usagef(c, "--read-only and --allow-delete apply to --dir: FILEs are always served read-only")
			case c.Bool("read-only") && c.Bool("allow-delete"):
				return usagef(c, "--read-only and --allow-delete contradict each other: give one")
			case (c.String("tls-cert") == "") != (c.String("tls-key") == ""):
				return usagef(c, "give both --tls-cert and --tls-key, or neither")
			}
			// The access log, the notices and the ready line share stderr,
			// from the server's goroutines and this one.
			errw := &lockedWriter{w: s.err}
			var handler slog.Handler
			switch c.String("log-format") {
			case "text":
				handler = slog.NewTextHandler(errw, nil)
			case "json":
				handler = slog.NewJSONHandler(errw, nil)
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
				Htpasswd: c.String("htpasswd"), TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"),
				ReadOnly: c.Bool("read-only"), AllowDelete: c.Bool("allow-delete"),
				Log: slog.New(handler), Notice: func(format string, args ...any) { fmt.Fprintf(errw, format+"\n", args...) }}
			return serve.Run(c.Context, opts, shutdownGrace,
				func(srv *serve.Server) {
					// stdout gets the bare address, for scripts; stderr the human line.
					fmt.Fprintln(s.out, srv.Addr())
					fmt.Fprintf(errw, "serving an OCI registry on %s://%s from %s; Ctrl-C stops it\n", srv.Scheme(), srv.Addr(), what)
				})
		},
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

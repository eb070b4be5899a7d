// Package serve is the registry of `bundle serve`: a read-only OCI registry
// straight from bundles (no extraction), or distribution v3 as a library
// on a local directory, for an air-gapped side that has no registry yet.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"

	// Registers the "filesystem" storage driver with distribution's factory.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// DefaultAddr is where Start listens when Options.Addr is empty.
const DefaultAddr = "127.0.0.1:5000"

// Options for Start.
type Options struct {
	Dir string // storage root; created if missing
	// Files are bundles to serve read-only, instead of Dir.
	Files  []string
	Prefix string // prepended to every repository of Files, as import's
	Addr   string // host:port; port 0 picks a free one; "" means DefaultAddr
	// Log receives the access log and errors; nil discards them.
	Log *slog.Logger
	// Notice receives what is worth telling at start; nil discards it.
	Notice func(format string, args ...any)
}

// Server is a running registry.
type Server struct {
	srv   *http.Server
	close func() error // the distribution app or the bundles
	ln    net.Listener
	done  chan error
}

// Start listens on opts.Addr and serves in the background until Shutdown.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Notice == nil {
		opts.Notice = func(string, ...any) {}
	}
	addr := opts.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	var (
		h     http.Handler
		close func() error
		err   error
	)
	switch {
	case len(opts.Files) > 0 && opts.Dir != "":
		return nil, errors.New("serve: give bundle files or --dir DIR, not both")
	case len(opts.Files) > 0:
		st, err := openStore(ctx, opts.Files, opts.Prefix, opts.Notice)
		if err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		h, close = &registry{st: st, log: opts.Log}, st.Close
	default:
		h, close, err = dirHandler(ctx, opts)
		if err != nil {
			return nil, err
		}
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		_ = close()
		return nil, fmt.Errorf("serve: listening on %s: %w (is another registry running there? pick another --addr)", addr, err)
	}
	s := &Server{
		srv: &http.Server{Handler: accessLog(opts.Log, h), ReadHeaderTimeout: 30 * time.Second,
			// net/http's own errors (TLS handshakes, aborted handlers) go
			// to the same log; they name no request URI.
			ErrorLog: slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn)},
		close: close,
		ln:    ln,
		done:  make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// dirHandler is distribution on opts.Dir.
func dirHandler(ctx context.Context, opts Options) (http.Handler, func() error, error) {
	if opts.Dir == "" {
		return nil, nil, errors.New("serve: nothing to serve: give bundle files or --dir DIR")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: storage directory %q: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("serve: creating storage directory %s: %w (choose a writable --dir)", dir, err)
	}
	// The app outlives a cancelled ctx until Shutdown: requests in flight still
	// need its storage.
	app, err := newApp(context.WithoutCancel(ctx), dir)
	if err != nil {
		return nil, nil, err
	}
	return app, app.Shutdown, nil
}

// newApp builds distribution's application; NewApp panics on a bad
// configuration, which must not take the process down without a message.
func newApp(ctx context.Context, dir string) (app *handlers.App, err error) {
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": dir},
			// Deleting is what lets a demo or a test clean a repository up.
			"delete": configuration.Parameters{"enabled": true},
		},
	}
	cfg.HTTP.Secret = "bundle-serve-local" // uploads are local; a fixed secret avoids a warning per start
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serve: starting registry on %s: %v", dir, r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Addr is the address the server listens on, with the port it picked.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting connections and waits for requests in flight
// (until ctx ends), so an upload the server acknowledged is on disk.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if aerr := s.close(); err == nil {
		err = aerr
	}
	return err
}

// Run serves until ctx is cancelled, then shuts down gracefully, giving
// requests in flight up to grace to finish. ready is called once with the
// listening address.
func Run(ctx context.Context, opts Options, grace time.Duration, ready func(addr string)) error {
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(s.Addr())
	}
	select {
	case <-ctx.Done():
	case err := <-s.done:
		// Serve ended on its own: put the error back for Shutdown.
		s.done <- err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	return s.Shutdown(sctx)
}

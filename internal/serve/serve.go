// Package serve is the registry of `bundle serve`: a read-only OCI registry
// straight from bundles (no extraction), or distribution v3 as a library
// on a local directory, for an air-gapped side that has no registry yet.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
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

	Htpasswd        string // bcrypt htpasswd file: Basic auth for every request but /healthz
	TLSCert, TLSKey string // PEM files: serve HTTPS
	ReadOnly        bool   // Dir: refuse every write (Files always do)
	AllowDelete     bool   // Dir: let DELETE remove manifests and blobs

	// Log receives the access log and errors; nil discards them.
	Log *slog.Logger
	// Notice receives what is worth telling at start (warnings included);
	// nil discards it.
	Notice func(format string, args ...any)
}

// Server is a running registry.
type Server struct {
	srv    *http.Server
	close  func() error // the distribution app or the bundles
	ln     net.Listener
	scheme string
	done   chan error
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
	tlsConfig, err := loadTLS(opts)
	if err != nil {
		return nil, err
	}
	var users *htpasswd
	if opts.Htpasswd != "" {
		if users, err = loadHtpasswd(opts.Htpasswd); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
	}
	var (
		h     http.Handler
		close func() error
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
	if users != nil {
		h = requireAuth(users, h)
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	// For the service manager: up and serving, no credentials needed,
	// nothing said about the content.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		_ = close()
		return nil, fmt.Errorf("serve: listening on %s: %w (is another registry running there? pick another --addr)", addr, err)
	}
	s := &Server{
		srv: &http.Server{Handler: accessLog(opts.Log, mux), ReadHeaderTimeout: 30 * time.Second,
			// net/http's own errors (TLS handshakes, aborted handlers) go
			// to the same log; they name no request URI.
			ErrorLog: slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn)},
		close:  close,
		ln:     ln,
		scheme: "http",
		done:   make(chan error, 1),
	}
	if tlsConfig != nil {
		s.srv.TLSConfig = tlsConfig
		s.ln = tls.NewListener(ln, tlsConfig)
		s.scheme = "https"
	}
	warnExposed(ln.Addr(), users != nil, tlsConfig != nil, opts.Notice)
	go func() { s.done <- s.srv.Serve(s.ln) }()
	return s, nil
}

// loadTLS reads the certificate and key, both or neither.
func loadTLS(opts Options) (*tls.Config, error) {
	switch {
	case opts.TLSCert == "" && opts.TLSKey == "":
		return nil, nil
	case opts.TLSCert == "" || opts.TLSKey == "":
		return nil, errors.New("serve: give both --tls-cert and --tls-key, or neither")
	}
	cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("serve: TLS certificate %s and key %s: %w", opts.TLSCert, opts.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// warnExposed is the binding rule: a registry reachable from other hosts
// without both authentication and TLS starts, with a warning naming the
// address. Refusing would break the common case of a read-only mirror on a
// closed network; the warning makes the choice a deliberate one.
func warnExposed(addr net.Addr, auth, tls bool, notice func(string, ...any)) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() || (auth && tls) {
		return
	}
	var missing string
	switch {
	case !auth && !tls:
		missing = "without authentication or TLS: anyone who reaches it can pull, in clear"
	case !auth:
		missing = "without authentication: anyone who reaches it can pull"
	default:
		missing = "without TLS: passwords and images cross the network in clear"
	}
	notice("warning: listening on %s, reachable from other hosts, %s; add --htpasswd FILE and --tls-cert/--tls-key, or listen on 127.0.0.1", tcp, missing)
}

// Scheme is "https" with TLS, else "http".
func (s *Server) Scheme() string { return s.scheme }

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
// started server.
func Run(ctx context.Context, opts Options, grace time.Duration, ready func(*Server)) error {
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(s)
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

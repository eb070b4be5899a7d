package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"

	// Registers the "filesystem" storage driver with distribution's factory.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

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
	// distribution logs through logrus's standard logger, the only one it
	// offers outside its internal packages, with every request's URI (query
	// string included) and User-Agent: keep what names the failure only.
	logrus.StandardLogger().SetFormatter(redacting{})
	// The app outlives a cancelled ctx until Shutdown: requests in flight still
	// need its storage.
	app, err := newApp(context.WithoutCancel(ctx), dir, opts.AllowDelete)
	if err != nil {
		return nil, nil, err
	}
	var h http.Handler = app
	if opts.ReadOnly {
		h = refuseWrites(h)
	}
	return h, app.Shutdown, nil
}

// refuseWrites answers every method but GET and HEAD with 405, before
// distribution sees it.
func refuseWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			readOnly(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// keptFields are the fields of distribution's log entries that say what
// failed without saying who asked or with what token.
var keptFields = []string{"err.code", "err.message", "http.request.method", "vars.name", "vars.reference", "vars.digest", "error"}

// redacting formats distribution's log entries with their level, message
// and keptFields only.
type redacting struct{}

func (redacting) Format(e *logrus.Entry) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "level=%s msg=%q source=distribution", e.Level, e.Message)
	for _, k := range keptFields {
		if v, ok := e.Data[k]; ok {
			fmt.Fprintf(&b, " %s=%q", k, fmt.Sprint(v))
		}
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// newApp builds distribution's application; NewApp panics on a bad
// configuration, which must not take the process down without a message.
func newApp(ctx context.Context, dir string, allowDelete bool) (app *handlers.App, err error) {
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": dir},
			// Off unless asked: an anonymous DELETE must not empty a site's
			// registry.
			"delete": configuration.Parameters{"enabled": allowDelete},
		},
	}
	// Zero in a configuration built in code, and then _catalog answers []
	// whatever the repositories: distribution's own default.
	cfg.Catalog.MaxEntries = 1000
	cfg.Log.AccessLog.Disabled = true      // accessLog writes one without query strings
	cfg.HTTP.Secret = "bundle-serve-local" // uploads are local; a fixed secret avoids a warning per start
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serve: starting registry on %s: %v", dir, r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

package serve

import (
	"log/slog"
	"net/http"
	"time"
)

// accessLog writes one line per request: method, path, status, bytes and
// time. Never the query string (upload _state tokens, ?token=) and never a
// header value (Authorization, cookies): a log is read by more people than
// the registry's users.
func accessLog(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			// An aborted response (a damaged blob) is logged too, then the
			// panic goes on to net/http, which drops the connection.
			p := recover()
			status := rec.status
			if p != nil {
				status = 0
			}
			log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status,
				"bytes", rec.bytes, "ms", time.Since(start).Milliseconds())
			if p != nil {
				panic(p)
			}
		}()
		h.ServeHTTP(rec, r)
	})
}

// recorder notes the status and the bytes of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

package remote

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// debugLog writes one line per request, for --debug: what was asked of
// which registry, what came back, how much, how fast. Addresses lose their
// query (upload tokens), and no header value is ever written.
type debugLog struct {
	mu sync.Mutex
	w  io.Writer
}

func newDebugLog(w io.Writer) *debugLog {
	if w == nil {
		return nil
	}
	return &debugLog{w: w}
}

func (d *debugLog) log(req *http.Request, resp *http.Response, err error, start time.Time) {
	if d == nil {
		return
	}
	u := *req.URL
	u.RawQuery, u.Fragment, u.User = "", "", nil
	took := time.Since(start).Round(time.Millisecond)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		fmt.Fprintf(d.w, "debug: %s %s: %s after %s\n", req.Method, u.String(), redactURLs(err.Error()), took)
		return
	}
	size := "?"
	if resp.ContentLength >= 0 {
		size = fmt.Sprint(resp.ContentLength)
	}
	fmt.Fprintf(d.w, "debug: %s %s %d %s bytes %s\n", req.Method, u.String(), resp.StatusCode, size, took)
}

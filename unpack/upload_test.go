package unpack

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
)

func TestImportUploadsEachBlobInOnePut(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testregistry.Registry) {
		f := newFixture(t)
		img := f.image(20, 3, 300<<10)
		f.name(img, "src:5000/team/app:1.0")
		rep, err, _ := importTo(t, t.Context(), f.file("b.tar.zst", writeOpts{comp: layout.Zstd}), reg.Host, nil)
		if err != nil {
			t.Fatal(err)
		}
		mustHave(t, reg, "team/app", "1.0", img.Digest)
		blobs := 3 + 1
		if rep.Uploaded != blobs || rep.BytesUploaded < 3*300<<10 {
			t.Fatalf("report: %d blobs, %d bytes uploaded", rep.Uploaded, rep.BytesUploaded)
		}
		for method, want := range map[string]int{"POST": blobs, "PUT": blobs, "PATCH": 0} {
			if n := reg.Count(method, "upload"); n != want {
				t.Errorf("%d %s requests to uploads, want %d", n, method, want)
			}
		}
	})
}

func TestImportIntoAFullTargetWritesNothing(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testregistry.Registry) {
		f := newFixture(t)
		img := f.image(21, 2, 1024)
		f.name(img, "src:5000/team/app:1.0")
		idx, _ := f.index(22, "linux/amd64", "linux/arm64")
		f.name(idx, "src:5000/team/multi:2.0")
		file := f.file("b.tar", writeOpts{})
		if _, err, _ := importTo(t, t.Context(), file, reg.Host, nil); err != nil {
			t.Fatal(err)
		}
		reg.ResetCounts()
		rep, err, _ := importTo(t, t.Context(), file, reg.Host, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"upload", "manifest"} {
			for _, method := range []string{"POST", "PUT", "PATCH"} {
				if n := reg.Count(method, kind); n != 0 {
					t.Errorf("second import made %d %s requests to %s", n, method, kind)
				}
			}
		}
		if rep.Uploaded != 0 || rep.BytesUploaded != 0 {
			t.Fatalf("second import reports %d uploads", rep.Uploaded)
		}
	})
}

// failFirstPut is a proxy that answers the first blob upload PUT (every
// one when always) with status, after reading part of its body, and passes
// the rest through.
type failFirstPut struct {
	rp     *httputil.ReverseProxy
	status int
	always bool
	mu     sync.Mutex
	failed int
	puts   int
}

func newFailFirstPut(t *testing.T, upstream string, status int) (*failFirstPut, string) {
	u, err := url.Parse("http://" + upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &failFirstPut{rp: httputil.NewSingleHostReverseProxy(u), status: status}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.Listener.Addr().String()
}

func (p *failFirstPut) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/") {
		p.mu.Lock()
		p.puts++
		fail := p.failed == 0 || p.always
		if fail {
			p.failed++
		}
		p.mu.Unlock()
		if fail {
			_, _ = io.CopyN(io.Discard, req.Body, 1024)
			w.WriteHeader(p.status)
			return
		}
	}
	p.rp.ServeHTTP(w, req)
}

func TestImportRetriesAFailedUpload(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		stdin   bool
		wantErr string // "" for success
	}{
		{"503 from a file", http.StatusServiceUnavailable, false, ""},
		{"429 from a file", http.StatusTooManyRequests, false, ""},
		{"400 is final", http.StatusBadRequest, false, "400"},
		{"503 from a stream cannot be replayed", http.StatusServiceUnavailable, true, "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := testregistry.NewDistribution(t)
			proxy, host := newFailFirstPut(t, reg.Host, tc.status)
			f := newFixture(t)
			img := f.image(23, 1, 64<<10)
			f.name(img, "src:5000/team/app:1.0")
			file, in := f.file("b.tar", writeOpts{}), []byte(nil)
			if tc.stdin {
				file, in = "-", f.bytes(writeOpts{})
			}
			_, err, _ := importTo(t, t.Context(), file, host, func(o *Options) { o.Stdin = bytes.NewReader(in); o.Concurrency = 1 })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "cannot be read twice") {
					t.Fatalf("error %v, want one with the registry's %s", err, tc.wantErr)
				}
				if _, _, ok := reg.GetManifest(t, "team/app", "1.0"); ok {
					t.Fatal("the manifest was pushed without its blob")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mustHave(t, reg, "team/app", "1.0", img.Digest)
			proxy.mu.Lock()
			puts := proxy.puts
			proxy.mu.Unlock()
			if puts != 2+1 {
				t.Fatalf("%d blob PUTs, want 3 (one retried)", puts)
			}
		})
	}
}

// An upload the registry keeps refusing costs one budget of attempts, each
// from a fresh POST, and the import ends with one line naming the blob,
// the registry, its answer and what to do, without the upload's URL.
func TestImportGivesUpOnAnUploadAfterOneBudget(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	proxy, host := newFailFirstPut(t, reg.Host, http.StatusServiceUnavailable)
	proxy.always = true
	f := newFixture(t)
	img := f.image(24, 1, 64<<10)
	f.name(img, "src:5000/team/app:1.0")
	const retries = 3
	_, err, _ := importTo(t, t.Context(), f.file("b.tar", writeOpts{}), host, func(o *Options) {
		o.Concurrency = 1
		o.Remote.MaxRetries, o.Remote.MinBackoff = retries, time.Millisecond
	})
	if err == nil {
		t.Fatal("import succeeded through a registry refusing every upload")
	}
	proxy.mu.Lock()
	puts := proxy.puts
	proxy.mu.Unlock()
	// Two blobs (the layer and the config), one budget each.
	if puts != 2*(retries+1) {
		t.Errorf("%d PUTs for two refused blobs, want one budget each, %d", puts, 2*(retries+1))
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{host, "503 Service Unavailable", "run the same command again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "_state") || strings.Contains(msg, "?") {
		t.Errorf("error %q shows the upload's URL", msg)
	}
}

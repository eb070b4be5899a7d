package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/containerd/containerd/v2/core/remotes"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fast keeps the backoff of the retry tests short; Retry-After: 0 from the
// fault proxy makes most waits zero anyway.
var fast = Options{PlainHTTP: true, MinBackoff: time.Millisecond}

func TestSplitReferenceNormalisesLikeDocker(t *testing.T) {
	d := digest.FromString("x")
	cases := []struct {
		ref             string
		host, repo, tag string
		dgst            digest.Digest
		wantErr         bool
	}{
		{ref: "alpine", host: "docker.io", repo: "library/alpine", tag: "latest"},
		{ref: "alpine:3.20", host: "docker.io", repo: "library/alpine", tag: "3.20"},
		{ref: "docker.io/team/app:1", host: "docker.io", repo: "team/app", tag: "1"},
		{ref: "127.0.0.1:5000/team/app:1.0", host: "127.0.0.1:5000", repo: "team/app", tag: "1.0"},
		{ref: "localhost/app@" + d.String(), host: "localhost", repo: "app", dgst: d},
		{ref: "reg.example/a/b/c:t@" + d.String(), host: "reg.example", repo: "a/b/c", tag: "t", dgst: d},
		{ref: "Upper/Case", wantErr: true},
		{ref: "", wantErr: true},
		{ref: "app@sha256:short", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			host, repo, tag, dgst, err := SplitReference(c.ref)
			if c.wantErr {
				if err == nil || !strings.Contains(err.Error(), "image reference") {
					t.Fatalf("err = %v, want a parse error naming the reference", err)
				}
				return
			}
			if err != nil || host != c.host || repo != c.repo || tag != c.tag || dgst != c.dgst {
				t.Fatalf("got %q %q %q %q %v, want %q %q %q %q", host, repo, tag, dgst, err, c.host, c.repo, c.tag, c.dgst)
			}
		})
	}
}

func TestResolverResolvesAndFetchesAPushedImage(t *testing.T) {
	for _, k := range []struct {
		name string
		new  func(testing.TB) *testregistry.Registry
	}{{"distribution", testregistry.NewDistribution}, {"referrersAPI", testregistry.NewReferrersAPI}} {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			reg := k.new(t)
			img := reg.PushImage(t, "team/app", "v1", testregistry.ImageSpec{Gzip: true})
			ref := reg.Ref("team/app", "v1")
			res := Options{PlainHTTP: true}.Resolver(ctx)
			name, desc, err := res.Resolve(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if name != ref || desc.Digest != img.Desc.Digest {
				t.Fatalf("resolved %s %s, want %s %s", name, desc.Digest, ref, img.Desc.Digest)
			}
			f, err := res.Fetcher(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := fetchDigest(t, ctx, f, img.Layers[1]); got != img.Layers[1].Digest {
				t.Fatalf("fetched layer digest %s, want %s", got, img.Layers[1].Digest)
			}
		})
	}
}

func fetchDigest(t *testing.T, ctx context.Context, f remotes.Fetcher, d ocispec.Descriptor) digest.Digest {
	t.Helper()
	rc, err := f.Fetch(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dg, err := digest.FromReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

func TestRetriesThroughTransientStatusesAndCountsThem(t *testing.T) {
	up := testregistry.NewDistribution(t)
	img := up.PushImage(t, "app", "v1", testregistry.ImageSpec{})
	cases := []struct {
		name   string
		status int
		times  int
	}{
		{"503 twice", http.StatusServiceUnavailable, 2},
		{"429 three times", http.StatusTooManyRequests, 3},
		{"502 once", http.StatusBadGateway, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			p := testregistry.NewProxy(t, up, testregistry.Faults{Status: c.status, StatusTimes: c.times})
			_, desc, err := fast.Resolver(ctx).Resolve(ctx, p.Ref("app", "v1"))
			if err != nil {
				t.Fatalf("resolve through %d x%d: %v", c.status, c.times, err)
			}
			if desc.Digest != img.Desc.Digest {
				t.Fatalf("digest %s, want %s", desc.Digest, img.Desc.Digest)
			}
			if got := p.Count("", "manifest"); got != c.times+1 {
				t.Fatalf("proxy saw %d manifest requests, want %d (faults + 1)", got, c.times+1)
			}
		})
	}
}

func TestTransportRetriesOnlyReplayableRequests(t *testing.T) {
	up := testregistry.NewDistribution(t)
	img := up.PushImage(t, "app", "v1", testregistry.ImageSpec{})
	_, manifest, _ := up.GetManifest(t, "app", "v1")
	cases := []struct {
		name       string
		opts       Options
		faults     int
		body       func() io.Reader
		wantStatus int // 0: a *GaveUpError
		wantCount  int
	}{
		{"get retried until success", fast, 2, nil, http.StatusOK, 3},
		{"get gives up after MaxRetries", Options{PlainHTTP: true, MinBackoff: time.Millisecond, MaxRetries: 2}, 10, nil, 0, 3},
		{"no retries when MaxRetries < 0", Options{PlainHTTP: true, MaxRetries: -1}, 10, nil, 0, 1},
		{"put with GetBody retried", fast, 1, func() io.Reader { return bytes.NewReader(manifest) }, http.StatusCreated, 2},
		{"put without GetBody handed back", fast, 1, func() io.Reader { return struct{ io.Reader }{bytes.NewReader(manifest)} }, http.StatusServiceUnavailable, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			p := testregistry.NewProxy(t, up, testregistry.Faults{Status: http.StatusServiceUnavailable, StatusTimes: c.faults})
			method, path, kind := http.MethodGet, "/v2/app/blobs/"+img.Layers[0].Digest.String(), "blob"
			var body io.Reader
			if c.body != nil {
				method, path, kind, body = http.MethodPut, "/v2/app/manifests/copy", "manifest", c.body()
			}
			req, err := http.NewRequestWithContext(ctx, method, "http://"+p.Host+path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
			_, client := c.opts.Connect(ctx)
			resp, err := client.send(ctx, req)
			if c.wantStatus == 0 {
				var g *GaveUpError
				if !errors.As(err, &g) || g.Attempts != c.wantCount {
					t.Fatalf("err = %v, want a *GaveUpError after %d attempts", err, c.wantCount)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.wantStatus {
					t.Fatalf("status %d, want %d", resp.StatusCode, c.wantStatus)
				}
			}
			if n := p.Count(method, kind); n != c.wantCount {
				t.Fatalf("%d requests, want %d", n, c.wantCount)
			}
		})
	}
}

// A body cut in the middle is one transient failure handed to the caller,
// who resumes from the bytes it has: containerd's fetcher must not reconnect
// on its own, a retry loop under ours.
func TestACutBlobBodyIsHandedBackToResume(t *testing.T) {
	ctx := context.Background()
	up := testregistry.NewDistribution(t)
	img := up.PushImage(t, "app", "v1", testregistry.ImageSpec{LayerSize: 256 << 10})
	p := testregistry.NewProxy(t, up, testregistry.Faults{ResetBlob: img.Layers[0].Digest, ResetTimes: 1})
	f, err := fast.Resolver(ctx).Fetcher(ctx, p.Ref("app", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.Fetch(ctx, img.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	_, err = io.Copy(&got, rc)
	var te *TransferError
	if !errors.As(err, &te) || !Transient(err) {
		t.Fatalf("read error %v, want a transient *TransferError", err)
	}
	if n := p.Count("GET", "blob"); n != 1 {
		t.Fatalf("%d blob GETs before the caller resumed, want 1", n)
	}
	rc.Close()
	if rc, err = f.Fetch(ctx, img.Layers[0]); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.(io.Seeker).Seek(int64(got.Len()), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(&got, rc); err != nil {
		t.Fatalf("resumed read: %v", err)
	}
	if d := digest.FromBytes(got.Bytes()); d != img.Layers[0].Digest {
		t.Fatalf("digest %s after resuming, want %s", d, img.Layers[0].Digest)
	}
}

// wraps reports whether err is in explained's chain. errors.Is cannot
// tell: containerd's ErrUnexpectedStatus is not comparable.
func wraps(explained, err error) bool {
	for e := explained; e != nil; e = errors.Unwrap(e) {
		if e.Error() == err.Error() {
			return true
		}
	}
	return false
}

// basicAuthFront puts a basic-auth check for user:pass in front of a real
// registry and returns its host.
func basicAuthFront(t *testing.T, up *testregistry.Registry, user, pass string) string {
	t.Helper()
	target, _ := url.Parse("http://" + up.Host)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="bundle-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func writeDockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	auths := map[string]any{}
	if user != "" {
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
	}
	data, _ := json.Marshal(map[string]any{"auths": auths})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCredentialsComeFromTheDockerConfig(t *testing.T) {
	up := testregistry.NewReferrersAPI(t)
	img := up.PushImage(t, "app", "v1", testregistry.ImageSpec{})
	up.PushReferrer(t, "app", img.Desc, "application/vnd.example.sig", nil)
	host := basicAuthFront(t, up, "bundle", "secret")
	ref := host + "/app:v1"
	cases := []struct {
		name       string
		user, pass string
		viaEnv     bool   // DOCKER_CONFIG instead of Options.DockerConfigDir
		wantErr    string // in Explain's message; "" for success
	}{
		{name: "config dir option", user: "bundle", pass: "secret"},
		{name: "DOCKER_CONFIG", user: "bundle", pass: "secret", viaEnv: true},
		{name: "no credentials", viaEnv: true, wantErr: "no credentials for " + host},
		{name: "wrong password", user: "bundle", pass: "nope", viaEnv: true, wantErr: "were refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := writeDockerConfig(t, host, c.user, c.pass)
			opts := Options{PlainHTTP: true, DockerConfigDir: dir}
			if c.viaEnv {
				t.Setenv("DOCKER_CONFIG", dir)
				opts.DockerConfigDir = ""
			}
			_, desc, err := opts.Resolver(ctx).Resolve(ctx, ref)
			if c.wantErr == "" {
				if err != nil || desc.Digest != img.Desc.Digest {
					t.Fatalf("resolve with credentials: %v", err)
				}
				// The Client reaches what the resolver does not: the referrers API.
				_, client := opts.Connect(ctx)
				listed, found, err := client.Referrers(ctx, host+"/app", img.Desc.Digest)
				if err != nil || !found || len(listed) != 1 {
					t.Fatalf("referrers through the Client: %v, found %v, %d entries", err, found, len(listed))
				}
				return
			}
			if err == nil {
				t.Fatal("resolve succeeded without valid credentials")
			}
			explained := Explain(err, ref)
			if !wraps(explained, err) || !strings.Contains(explained.Error(), c.wantErr) || !strings.Contains(explained.Error(), "docker login "+host) {
				t.Fatalf("Explain = %v, want it to wrap the error, say %q and suggest docker login", explained, c.wantErr)
			}
		})
	}
}

// tlsFront serves a registry over TLS with httptest's self-signed
// certificate and returns its host and the certificate as PEM.
func tlsFront(t *testing.T, up *testregistry.Registry) (string, []byte) {
	t.Helper()
	target, _ := url.Parse("http://" + up.Host)
	srv := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
		pr.Out.Header.Set("X-Forwarded-Proto", "https")
	}})
	// The refused handshakes are the point of some tests: keep them quiet.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// hostsDir writes a hosts.toml that insists on verified HTTPS for host
// (containerd skips verification for localhost by default).
func hostsDir(t *testing.T, host string, ca []byte) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	toml := "server = \"https://" + host + "\"\n"
	if ca != nil {
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644); err != nil {
			t.Fatal(err)
		}
		toml += "ca = \"" + filepath.Join(dir, "ca.crt") + "\"\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestHostsDirCATrustsThePrivateRegistry(t *testing.T) {
	ctx := context.Background()
	up := testregistry.NewDistribution(t)
	img := up.PushImage(t, "app", "v1", testregistry.ImageSpec{})
	host, ca := tlsFront(t, up)
	ref := host + "/app:v1"
	cases := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"ca in hosts dir", Options{HostsDir: hostsDir(t, host, ca)}, ""},
		{"insecure skips verification", Options{HostsDir: hostsDir(t, host, nil), Insecure: true}, ""},
		{"unknown ca", Options{HostsDir: hostsDir(t, host, nil)}, "--insecure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, desc, err := c.opts.Resolver(ctx).Resolve(ctx, ref)
			if c.wantErr == "" {
				if err != nil || desc.Digest != img.Desc.Digest {
					t.Fatalf("resolve over TLS: %v", err)
				}
				return
			}
			explained := Explain(err, ref)
			if err == nil || !wraps(explained, err) || !strings.Contains(explained.Error(), c.wantErr) || !strings.Contains(explained.Error(), "--hosts-dir") {
				t.Fatalf("Explain = %v, want TLS advice", explained)
			}
		})
	}
}

func TestExplainSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	reg := testregistry.NewDistribution(t)
	reg.PushImage(t, "app", "v1", testregistry.ImageSpec{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	cases := []struct {
		name string
		ref  string
		want []string
	}{
		{"missing tag", reg.Ref("app", "nope"), []string{"not found", "repository app on " + reg.Host}},
		{"missing repository", reg.Ref("other", "v1"), []string{"not found"}},
		{"nothing listening", closed + "/app:v1", []string{"unreachable", "--plain-http"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := fast.Resolver(ctx).Resolve(ctx, c.ref)
			if err == nil {
				t.Fatal("resolve succeeded")
			}
			explained := Explain(err, c.ref)
			if !wraps(explained, err) {
				t.Fatalf("Explain does not wrap %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(explained.Error(), w) {
					t.Fatalf("Explain = %q, want it to say %q", explained, w)
				}
			}
		})
	}
	if Explain(nil, "x") != nil {
		t.Fatal("Explain(nil) != nil")
	}
	other := errors.New("disk full")
	if Explain(other, "x") != other {
		t.Fatal("Explain changed an error it does not know")
	}
}

func TestRetryAfterIsHonouredAndCapped(t *testing.T) {
	p := Options{MinBackoff: time.Second, MaxBackoff: time.Hour}.Policy()
	cases := []struct {
		header string
		want   time.Duration
	}{
		{"0", 0},
		{"2", 2 * time.Second},
		{"100000", DefaultMaxRetryAfter},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	}
	for _, c := range cases {
		got, ok := p.Retry(1, &StatusError{StatusCode: http.StatusTooManyRequests, RetryAfter: c.header})
		if !ok || got != c.want {
			t.Errorf("Retry-After %q: wait %v (retry %v), want %v", c.header, got, ok, c.want)
		}
	}
	for attempt := 1; attempt <= 4; attempt++ {
		got, _ := p.Retry(attempt, &StatusError{StatusCode: http.StatusServiceUnavailable})
		lo, hi := (time.Second<<(attempt-1))/2, time.Second<<(attempt-1)
		if got < lo || got > hi {
			t.Errorf("attempt %d: backoff %v outside [%v, %v]", attempt, got, lo, hi)
		}
	}
}

func TestExplainNamesABareRegistryHost(t *testing.T) {
	err := Explain(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "127.0.0.1:1")
	if !strings.Contains(err.Error(), "registry 127.0.0.1:1 is unreachable") {
		t.Errorf("Explain = %q, want it to name registry 127.0.0.1:1", err)
	}
}

// TestAuthFileIsTheOneCredentialsFile: podman's and skopeo's auth.json
// (docker's format) named by --authfile / REGISTRY_AUTH_FILE, in place of
// docker's config; a named file that is missing is an error, not silence.
func TestAuthFileIsTheOneCredentialsFile(t *testing.T) {
	up := testregistry.NewDistribution(t)
	img := up.PushImage(t, "app", "v1", testregistry.ImageSpec{})
	host := basicAuthFront(t, up, "bundle", "secret")
	ctx := context.Background()
	auth := filepath.Join(writeDockerConfig(t, host, "bundle", "secret"), "config.json")
	t.Setenv("DOCKER_CONFIG", writeDockerConfig(t, host, "bundle", "wrong"))

	_, desc, err := Options{PlainHTTP: true, AuthFile: auth}.Resolver(ctx).Resolve(ctx, host+"/app:v1")
	if err != nil || desc.Digest != img.Desc.Digest {
		t.Fatalf("resolve with --authfile: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "auth.json")
	_, _, err = Options{PlainHTTP: true, AuthFile: missing}.Resolver(ctx).Resolve(ctx, host+"/app:v1")
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("resolve with a missing --authfile: %v, want an error naming it", err)
	}
}

// TestDebugLogsEveryRequestWithoutQueryOrHeaders: --debug prints one line
// per request, and never an upload's token or a credential.
func TestDebugLogsEveryRequestWithoutQueryOrHeaders(t *testing.T) {
	up := testregistry.NewDistribution(t)
	up.PushImage(t, "app", "v1", testregistry.ImageSpec{})
	host := basicAuthFront(t, up, "bundle", "secret")
	ctx := context.Background()
	var log bytes.Buffer
	opts := Options{PlainHTTP: true, DockerConfigDir: writeDockerConfig(t, host, "bundle", "secret"), Debug: &log}
	_, client := opts.Connect(ctx)
	if _, err := client.Tags(ctx, host+"/app", 10, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if !strings.Contains(out, "debug: GET http://"+host+"/v2/app/tags/list 200") {
		t.Errorf("no line for the tag listing:\n%s", out)
	}
	if strings.Contains(out, "?") || strings.Contains(out, "secret") || strings.Contains(out, "Basic ") {
		t.Errorf("the log shows a query or a credential:\n%s", out)
	}
}

package serve

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/bundle-dev/bundle/internal/testregistry"
)

// writeHtpasswd writes a bcrypt htpasswd file with one user.
func writeHtpasswd(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte("# users\n"+user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeAsksForCredentials(t *testing.T) {
	pw := writeHtpasswd(t, "site", "s3cret")
	f := newFixture(t, ".tar.zst")
	for _, mode := range []struct {
		name string
		opts Options
		path string
	}{
		{"files", Options{Files: []string{f.file}, Htpasswd: pw}, "/v2/team/multi/manifests/2.0"},
		{"dir", Options{Dir: t.TempDir(), Htpasswd: pw}, "/v2/_catalog"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			base, _ := serveFiles(t, mode.opts)
			tests := []struct {
				name, path, user, password string
				status                     int
			}{
				{"no credentials", mode.path, "", "", 401},
				{"wrong password", mode.path, "site", "guess", 401},
				{"unknown user", mode.path, "root", "s3cret", 401},
				{"right credentials", mode.path, "site", "s3cret", 200},
				{"right credentials again (remembered)", mode.path, "site", "s3cret", 200},
				{"health without credentials", "/healthz", "", "", 200},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					req, err := http.NewRequestWithContext(t.Context(), "GET", base+tt.path, nil)
					if err != nil {
						t.Fatal(err)
					}
					if tt.user != "" {
						req.SetBasicAuth(tt.user, tt.password)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != tt.status {
						t.Fatalf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.status)
					}
					if tt.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
						t.Errorf("401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
					}
				})
			}
		})
	}
}

func TestStartRefusesBadSecurityFiles(t *testing.T) {
	dir := t.TempDir()
	sha := filepath.Join(dir, "sha")
	if err := os.WriteFile(sha, []byte("site:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# nobody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := writeCert(t)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"htpasswd not bcrypt", Options{Htpasswd: sha}, "htpasswd -B"},
		{"htpasswd empty", Options{Htpasswd: empty}, "no user"},
		{"htpasswd missing", Options{Htpasswd: filepath.Join(dir, "none")}, "htpasswd"},
		{"cert without key", Options{TLSCert: cert}, "--tls-key"},
		{"key is not the cert's", Options{TLSCert: cert, TLSKey: cert}, "TLS certificate"},
		{"both dir and files", Options{Files: []string{"a.tar"}, TLSCert: cert, TLSKey: key}, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Addr = "127.0.0.1:0"
			tt.opts.Dir = t.TempDir()
			s, err := Start(t.Context(), tt.opts)
			if err == nil {
				s.Shutdown(t.Context())
				t.Fatal("Start succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %s", err, tt.want)
			}
		})
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	return testregistry.SelfSigned(t, t.TempDir())
}

func TestServeOverTLS(t *testing.T) {
	cert, key := writeCert(t)
	f := newFixture(t, ".tar")
	s, err := Start(t.Context(), Options{Files: []string{f.file}, Addr: "127.0.0.1:0", TLSCert: cert, TLSKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	if s.Scheme() != "https" {
		t.Errorf("scheme %q, want https", s.Scheme())
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + s.Addr() + "/v2/team/multi/manifests/2.0")
	if err != nil {
		t.Fatalf("GET over TLS with the CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET over TLS = %d, want 200", resp.StatusCode)
	}
	if _, err := http.Get("https://" + s.Addr() + "/v2/"); err == nil {
		t.Error("a client without the CA was answered")
	}
}

func TestWarnExposedNamesTheAddress(t *testing.T) {
	tests := []struct {
		name      string
		ip        string
		auth, tls bool
		want      string // "" for no warning
	}{
		{"loopback", "127.0.0.1", false, false, ""},
		{"loopback v6", "::1", false, false, ""},
		{"all interfaces, bare", "0.0.0.0", false, false, "without authentication or TLS"},
		{"all interfaces, auth only", "0.0.0.0", true, false, "without TLS"},
		{"an interface, TLS only", "192.0.2.7", false, true, "without authentication"},
		{"an interface, both", "192.0.2.7", true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			addr := &net.TCPAddr{IP: net.ParseIP(tt.ip), Port: 5000}
			warnExposed(addr, tt.auth, tt.tls, func(format string, args ...any) {
				got = append(got, fmt.Sprintf(format, args...))
			})
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("warned %q, want nothing", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want) || !strings.Contains(got[0], addr.String())):
				t.Errorf("warned %q, want one warning naming %s and saying %q", got, addr, tt.want)
			}
		})
	}
}

func TestAccessLogKeepsSecretsOut(t *testing.T) {
	pw := writeHtpasswd(t, "site", "s3cret-password")
	f := newFixture(t, ".tar")
	var logs logBuffer
	s, err := Start(t.Context(), Options{Files: []string{f.file}, Addr: "127.0.0.1:0", Htpasswd: pw, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+s.Addr()+"/v2/team/multi/manifests/2.0?token=query-secret&_state=upload-secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("site", "s3cret-password")
	req.Header.Set("User-Agent", "agent-secret")
	req.Header.Set("Cookie", "cookie-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, secret := range []string{"query-secret", "upload-secret", "s3cret", "c2l0ZTpzM2NyZXQ", "agent-secret", "cookie-secret", "token="} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	var line struct {
		Method, Path string
		Status       int
		Bytes        int64
		Ms           *int64
	}
	first, _, _ := strings.Cut(out, "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("log line %q is not JSON: %v", first, err)
	}
	if line.Method != "GET" || line.Path != "/v2/team/multi/manifests/2.0" || line.Status != 200 || line.Bytes != f.index.Desc.Size || line.Ms == nil {
		t.Errorf("log line %s, want method, path, status 200, %d bytes and ms", first, f.index.Desc.Size)
	}
}

func TestDirIsHardened(t *testing.T) {
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("layer")
	manifest := imageManifest(t, config, layer)
	dir := t.TempDir()
	// Fill the directory with two repositories, then look at it read-only.
	rw := start(t, t.Context(), dir)
	base := "http://" + rw.Addr()
	for _, repo := range []string{"team/a", "team/b"} {
		pushBlob(t, base, repo, config)
		pushBlob(t, base, repo, layer)
		put(t, base+"/v2/"+repo+"/manifests/1.0", "application/vnd.oci.image.manifest.v1+json", manifest, http.StatusCreated)
	}
	resp, body := do(t, "DELETE", base+"/v2/team/a/manifests/"+digest.FromBytes(manifest).String(), nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE without --allow-delete = %d %s, want 405", resp.StatusCode, body)
	}
	var c struct{ Repositories []string }
	resp, body = do(t, "GET", base+"/v2/_catalog?n=1", nil)
	mustJSON(t, body, &c)
	if strings.Join(c.Repositories, ",") != "team/a" || !strings.Contains(resp.Header.Get("Link"), "last=team") {
		t.Errorf("catalog page %s with Link %q, want team/a and a next page", body, resp.Header.Get("Link"))
	}
	if err := rw.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	ro, _ := serveFiles(t, Options{Dir: dir, ReadOnly: true})
	resp, body = do(t, "GET", ro+"/v2/_catalog", nil)
	mustJSON(t, body, &c)
	if strings.Join(c.Repositories, ",") != "team/a,team/b" {
		t.Errorf("read-only catalog %s, want team/a and team/b", body)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		resp, body := do(t, m, ro+"/v2/team/a/blobs/uploads/", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s on --read-only = %d, want 405", m, resp.StatusCode)
		}
		wantCode("UNSUPPORTED")(t, resp, body)
	}

	del, _ := serveFiles(t, Options{Dir: dir, AllowDelete: true})
	resp, body = do(t, "DELETE", del+"/v2/team/a/manifests/"+digest.FromBytes(manifest).String(), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("DELETE with --allow-delete = %d %s, want 202", resp.StatusCode, body)
	}
}

func TestDistributionLogIsRedacted(t *testing.T) {
	e := logrus.NewEntry(logrus.New()).WithFields(logrus.Fields{
		"http.request.uri": "/v2/a/blobs/uploads/x?_state=secret", "http.request.useragent": "agent", "err.code": "blob unknown", "vars.name": "a",
	})
	e.Level, e.Message = logrus.ErrorLevel, "response completed with error"
	out, err := redacting{}.Format(e)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out); strings.Contains(s, "secret") || strings.Contains(s, "agent") || !strings.Contains(s, "blob unknown") || !strings.Contains(s, `vars.name="a"`) {
		t.Errorf("formatted %q: want the error and repository, no URI or agent", s)
	}
}

package remote

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// recorder is a server that notes the credentials every request carries:
// its Authorization, or the password of an OAuth form (how containerd asks
// a token server when it has a user name and password).
type recorder struct {
	mu    sync.Mutex
	auths []string
}

func (r *recorder) note(req *http.Request) {
	cred := req.Header.Get("Authorization")
	if cred == "" && req.Method == http.MethodPost {
		cred = req.PostFormValue("password")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auths = append(r.auths, cred)
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auths...)
}

// A registry that redirects a blob elsewhere must not hand its
// credentials over: not to another host, and not to another port of the
// same host, which net/http's own rule lets through.
func TestRedirectsLeaveCredentialsBehind(t *testing.T) {
	blob := []byte("redirected blob")
	d := digest.FromBytes(blob)
	cdn := &recorder{}
	cdnSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cdn.note(r)
		_, _ = w.Write(blob)
	}))
	t.Cleanup(cdnSrv.Close)
	reg := &recorder{}
	regSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.note(r)
		if u, p, ok := r.BasicAuth(); !ok || u != "bundle" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/same-origin"):
			_, _ = w.Write(blob)
		case strings.Contains(r.URL.Path, "/blobs/") && r.URL.Query().Get("here") != "":
			http.Redirect(w, r, "/v2/app/blobs/same-origin", http.StatusTemporaryRedirect)
		case strings.Contains(r.URL.Path, "/blobs/"):
			// Same host name (127.0.0.1), another port.
			http.Redirect(w, r, cdnSrv.URL+"/data?X-Signature=abc", http.StatusTemporaryRedirect)
		}
	}))
	t.Cleanup(regSrv.Close)
	host := strings.TrimPrefix(regSrv.URL, "http://")
	opts := Options{PlainHTTP: true, DockerConfigDir: writeDockerConfig(t, host, "bundle", "secret")}
	ctx := context.Background()
	resolver, client := opts.Connect(ctx)

	// containerd's fetcher, which authorizes every redirect anew.
	f, err := resolver.Fetcher(ctx, host+"/app@"+d.String())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.Fetch(ctx, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(blob))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != string(blob) {
		t.Fatalf("fetch through the redirect: %q %v", got, err)
	}
	// Our client, on net/http's redirect rule.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/app/blobs/"+d.String(), nil)
	resp, err := client.send(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	for _, a := range cdn.seen() {
		if a != "" {
			t.Errorf("the server on another port got Authorization %q", a)
		}
	}
	if n := len(cdn.seen()); n != 2 {
		t.Fatalf("the other server saw %d requests, want 2", n)
	}

	// A redirect within the registry keeps them.
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/app/blobs/"+d.String()+"?here=1", nil)
	resp, err = client.send(ctx, req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("same-origin redirect: %v %v", resp, err)
	}
	drain(resp)
}

// A Bearer realm on another origin gets the registry's credentials only
// over TLS, unless --plain-http says plain HTTP everywhere.
func TestBearerRealmGetsCredentialsOnlyOverTLS(t *testing.T) {
	token := func(rec *recorder) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			rec.note(r)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"token":"t0k3n","access_token":"t0k3n"}`)
		}
	}
	plainRec, tlsRec := &recorder{}, &recorder{}
	plainTokens := httptest.NewServer(token(plainRec))
	t.Cleanup(plainTokens.Close)
	tlsTokens := httptest.NewTLSServer(token(tlsRec))
	t.Cleanup(tlsTokens.Close)

	registry := func(realm string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer t0k3n" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			wholeManifest(w, r)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	cases := []struct {
		name      string
		realm     string
		rec       *recorder
		plainHTTP bool
		creds     bool
		wantErr   string // "" for success
		wantAuth  bool   // the token server got the credentials
	}{
		{"plain HTTP realm elsewhere: refused", plainTokens.URL + "/token", plainRec, false, true, "over plain HTTP", false},
		{"plain HTTP realm with --plain-http", plainTokens.URL + "/token", plainRec, true, true, "", true},
		{"TLS realm elsewhere", tlsTokens.URL + "/token", tlsRec, false, true, "", true},
		{"plain HTTP realm, no credentials to leak", plainTokens.URL + "/token", plainRec, false, false, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			host := registry(c.realm)
			before := len(c.rec.seen())
			user := ""
			if c.creds {
				user = "bundle"
			}
			opts := Options{PlainHTTP: c.plainHTTP, DockerConfigDir: writeDockerConfig(t, host, user, "secret")}
			_, _, err := opts.Resolver(ctx).Resolve(ctx, host+"/app:v1")
			if c.wantErr == "" && err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("resolve: %v, want an error saying %q", err, c.wantErr)
			}
			gotAuth := false
			for _, a := range c.rec.seen()[before:] {
				gotAuth = gotAuth || a != ""
			}
			if gotAuth != c.wantAuth {
				t.Fatalf("token server got credentials: %v, want %v", gotAuth, c.wantAuth)
			}
		})
	}
}

package testregistry

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RegistryBinary is Debian's docker-registry (distribution 2.8).
const RegistryBinary = "/usr/bin/docker-registry"

// The credentials of a process started with Htpasswd.
const (
	ProcessUser     = "bundle"
	ProcessPassword = "secret"
	// bcrypt of ProcessPassword at cost 4: cheap enough for every request.
	processHtpasswd = "$2b$04$Ki1HC478R6Q3O04j1cMubOIO44a5DsFCq9RpF5GwBi3EKyhso8Qku"
)

// ProcessOptions choose how the registry process is reached.
type ProcessOptions struct {
	Htpasswd bool // user "bundle" password "secret"
	TLS      bool // self-signed cert for 127.0.0.1
}

// Process is a docker-registry process. Count stays 0: nothing sits in
// front of it (put NewProxy there to count).
type Process struct {
	Registry
	CACertPath      string // the self-signed certificate, with TLS
	DockerConfigDir string // config.json with the credentials, with Htpasswd
	User, Password  string
}

// StartProcess starts docker-registry on a free port and waits until it
// answers. Without the binary the test is skipped, unless BUNDLE_E2E=1.
func StartProcess(t testing.TB, opts ProcessOptions) *Process {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		if os.Getenv("BUNDLE_E2E") == "1" {
			t.Fatalf("testregistry: %s not found (apt-get install docker-registry): %v", RegistryBinary, err)
		}
		t.Skipf("testregistry: %s not installed; set BUNDLE_E2E=1 to make this a failure", RegistryBinary)
	}
	dir := t.TempDir()
	p := &Process{}
	p.Registry.init(false)
	p.noSchema1 = true
	port := freePort(t)
	p.Host = "127.0.0.1:" + strconv.Itoa(port)

	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: bundle-testregistry
`, filepath.Join(dir, "data"), p.Host)
	if opts.TLS {
		cert, key := writeSelfSigned(t, dir)
		p.CACertPath = cert
		p.scheme = "https"
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(cert)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
		p.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	auths := map[string]any{}
	if opts.Htpasswd {
		htpasswd := filepath.Join(dir, "htpasswd")
		writeFile(t, htpasswd, []byte(ProcessUser+":"+processHtpasswd+"\n"))
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: bundle\n    path: %s\n", htpasswd)
		p.User, p.Password = ProcessUser, ProcessPassword
		p.user, p.password = ProcessUser, ProcessPassword
		auths[p.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(ProcessUser + ":" + ProcessPassword))}
	}
	p.DockerConfigDir = filepath.Join(dir, "docker")
	if err := os.MkdirAll(p.DockerConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dockerCfg, _ := json.Marshal(map[string]any{"auths": auths})
	writeFile(t, filepath.Join(p.DockerConfigDir, "config.json"), dockerCfg)
	cfgPath := filepath.Join(dir, "config.yml")
	writeFile(t, cfgPath, []byte(cfg))

	p.run(t, cfgPath)
	return p
}

func (p *Process) run(t testing.TB, cfgPath string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, RegistryBinary, "serve", cfgPath)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("testregistry: starting %s: %v", RegistryBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})

	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.ready() {
			return
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("testregistry: %s exited before answering on %s: %v\n%s", RegistryBinary, p.Host, err, out.String())
		case <-deadline:
			t.Fatalf("testregistry: %s did not answer on %s within 20s\n%s", RegistryBinary, p.Host, out.String())
		case <-tick.C:
		}
	}
}

// ready reports whether /v2/ answers at all (401 counts: it is up).
func (p *Process) ready() bool {
	req, err := http.NewRequest(http.MethodGet, p.baseURL()+"/v2/", nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testregistry: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and
// localhost and its key, and returns their paths.
func writeSelfSigned(t testing.TB, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return certPath, keyPath
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("testregistry: writing %s: %v", path, err)
	}
}

// lockedBuffer collects the process output written from exec's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

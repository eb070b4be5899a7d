package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/testregistry"
)

// serveProcess runs `bundle serve args...` and returns the address it
// printed; Cleanup stops it with SIGTERM and wants exit 0.
func serveProcess(t *testing.T, args ...string) (string, *bytes.Buffer) {
	t.Helper()
	// Not CommandContext(t.Context()): that context ends before Cleanup
	// runs, and would kill the server before it is asked to stop.
	cmd := exec.Command(bundleBin, append([]string{"serve"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("bundle serve printed no address: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("stopping bundle serve: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("bundle serve after SIGTERM: %v, want exit 0\n%s", err, stderr.String())
		}
	})
	return strings.TrimSpace(addr), stderr
}

// TestServeFileToRealClients serves a bundle with auth and TLS and pulls
// from it with skopeo and with bundle itself (credentials through
// DOCKER_CONFIG, the CA through --hosts-dir), then carries what bundle
// pulled into docker-registry: the same digests and referrers as the source.
func TestServeFileToRealClients(t *testing.T) {
	needTools(t, testregistry.RegistryBinary, "skopeo")
	src := seed(t)
	archive := filepath.Join(t.TempDir(), "b.tar.zst")
	export(t, archive, nil, src.appRef, src.toolRef)

	dir := t.TempDir()
	cert, key := testregistry.SelfSigned(t, dir)
	htpasswd := testregistry.WriteHtpasswd(t, dir)
	addr, _ := serveProcess(t, "--htpasswd", htpasswd, "--tls-cert", cert, "--tls-key", key, "--addr", "127.0.0.1:0", "--log-format", "json", archive)
	ca, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir() // skopeo's --cert-dir: *.crt are CAs
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	creds := testregistry.ProcessUser + ":" + testregistry.ProcessPassword
	app := addr + "/" + src.appRepo + ":1.0"

	t.Run("skopeo copies the multi-platform index", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "oci")
		r := runCmd(t, nil, "skopeo", "copy", "--all", "--src-cert-dir", certDir, "--src-creds", creds, "docker://"+app, "oci:"+out+":1.0")
		if r.code != 0 {
			t.Fatalf("skopeo copy: exit %d\n%s", r.code, r.stderr)
		}
		data, err := os.ReadFile(filepath.Join(out, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != src.app.Digest {
			t.Errorf("skopeo copied %v, want the index %s", idx.Manifests, src.app.Digest)
		}
		r = runCmd(t, nil, "skopeo", "inspect", "--raw", "--cert-dir", certDir, "--creds", creds, "docker://"+addr+"/"+src.toolRepo+":2.0")
		if r.code != 0 || digest.FromString(r.stdout) != src.tool.Digest {
			t.Errorf("skopeo inspect --raw: exit %d, digest %s, want %s\n%s", r.code, digest.FromString(r.stdout), src.tool.Digest, r.stderr)
		}
	})
	t.Run("skopeo without credentials is refused", func(t *testing.T) {
		r := runCmd(t, nil, "skopeo", "inspect", "--raw", "--cert-dir", certDir, "--no-creds", "docker://"+app)
		if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
			t.Errorf("skopeo without credentials: exit %d, stderr %q; want a refusal", r.code, r.stderr)
		}
	})

	hosts := hostsDir(t, addr, ca)
	docker := t.TempDir()
	empty := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(creds))
	if err := os.WriteFile(filepath.Join(docker, "config.json"), []byte(`{"auths":{"`+addr+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again.tar.zst")
	exportFrom := func(config string) result {
		return bundle(t, []string{"DOCKER_CONFIG=" + config}, "export", "--quiet", "--hosts-dir", hosts, "--cache", t.TempDir(), "-o", again, app, addr+"/"+src.toolRepo+":2.0")
	}
	t.Run("bundle without credentials is refused", func(t *testing.T) {
		if r := exportFrom(empty); r.code != 1 {
			t.Errorf("export without credentials: exit %d, want 1\n%s", r.code, r.stderr)
		}
	})
	t.Run("bundle carries what serve serves into docker-registry", func(t *testing.T) {
		if r := exportFrom(docker); r.code != 0 {
			t.Fatalf("export from serve with DOCKER_CONFIG and --hosts-dir: exit %d\n%s", r.code, r.stderr)
		}
		dst := testregistry.StartProcess(t, testregistry.ProcessOptions{})
		mustBundle(t, nil, "import", "--quiet", "--plain-http", "--target", dst.Host, again)
		for repo, want := range map[string]digest.Digest{src.appRepo: src.app.Digest, src.toolRepo: src.tool.Digest} {
			tag := map[string]string{src.appRepo: "1.0", src.toolRepo: "2.0"}[repo]
			if d, _, ok := dst.GetManifest(t, repo, tag); !ok || d.Digest != want {
				t.Errorf("%s:%s on docker-registry is %s (found %v), want %s", repo, tag, d.Digest, ok, want)
			}
		}
		for subject, want := range map[digest.Digest][]digest.Digest{
			src.app.Digest:     {src.appSig.Digest, src.appSBOM.Digest},
			src.appSBOM.Digest: {src.sbomSig.Digest},
		} {
			got := map[digest.Digest]bool{}
			for _, d := range dst.ListReferrers(t, src.appRepo, subject) {
				got[d.Digest] = true
			}
			for _, w := range want {
				if !got[w] || len(got) != len(want) {
					t.Errorf("referrers of %s on docker-registry: %v, want %v", subject, got, want)
				}
			}
		}
	})
}

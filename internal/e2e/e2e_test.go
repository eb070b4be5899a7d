package e2e

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/pack"
	"github.com/bundle-dev/bundle/unpack"
)

const (
	sigType  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	sbomType = "application/spdx+json"
)

// source is what the tests export: a two-platform index with a signature,
// an SBOM and a signature on the SBOM, on a registry with the referrers
// API; and a single image with a referrer and a cosign signature, on one
// without.
type source struct {
	app, tool         ocispec.Descriptor
	appRef, toolRef   string
	appSig, appSBOM   ocispec.Descriptor
	sbomSig, toolSig  ocispec.Descriptor
	appRepo, toolRepo string
}

func seed(t *testing.T) source {
	t.Helper()
	withAPI := testregistry.NewReferrersAPI(t)
	without := testregistry.NewDistribution(t)
	var s source
	s.appRepo, s.toolRepo = "team/app", "team/tool"
	idx := withAPI.PushIndex(t, s.appRepo, "1.0", []string{"linux/amd64", "linux/arm64"}, testregistry.ImageSpec{Seed: 1, Gzip: true}, false)
	s.app, s.appRef = idx.Desc, withAPI.Ref(s.appRepo, "1.0")
	s.appSig = withAPI.PushReferrer(t, s.appRepo, s.app, sigType, nil)
	s.appSBOM = withAPI.PushReferrer(t, s.appRepo, s.app, sbomType, nil)
	s.sbomSig = withAPI.PushReferrer(t, s.appRepo, s.appSBOM, sigType, map[string]string{"of": "sbom"})
	img := without.PushImage(t, s.toolRepo, "2.0", testregistry.ImageSpec{Seed: 2, Gzip: true})
	s.tool, s.toolRef = img.Desc, without.Ref(s.toolRepo, "2.0")
	s.toolSig = without.PushReferrer(t, s.toolRepo, s.tool, sigType, nil)
	return s
}

func export(t *testing.T, out string, extra []string, refs ...string) *pack.Report {
	t.Helper()
	args := append([]string{"export", "--plain-http", "--quiet", "--json", "--cache", t.TempDir(), "-o", out}, extra...)
	r := mustBundle(t, nil, append(args, refs...)...)
	var rep pack.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("export --json printed no JSON report: %v\n%s", err, r.stdout)
	}
	return &rep
}

func TestExportImportIntoDockerRegistryWithAuthKeepsDigestsAndReferrers(t *testing.T) {
	needTools(t, testregistry.RegistryBinary, "skopeo")
	src := seed(t)
	archive := filepath.Join(t.TempDir(), "b.tar.zst")
	rep := export(t, archive, nil, src.appRef, src.toolRef)
	if got := imageDigests(rep); got[src.app.Digest] != src.appRef || got[src.tool.Digest] != src.toolRef {
		t.Errorf("export report images %v, want %s=%s and %s=%s", got, src.app.Digest, src.appRef, src.tool.Digest, src.toolRef)
	}
	if rep.Referrers < 4 {
		t.Errorf("export report counts %d referrers, want at least 4 (sig, sbom, sbom sig, tool sig)", rep.Referrers)
	}
	if _, err := os.Stat(archive + ".sha256"); err != nil {
		t.Errorf("no checksum file beside the archive: %v", err)
	}

	dst := testregistry.StartProcess(t, testregistry.ProcessOptions{Htpasswd: true})
	target := dst.Host + "/mirror"

	// Without credentials the registry answers 401: exit 1, naming the target.
	noCreds := []string{"DOCKER_CONFIG=" + t.TempDir()}
	if r := bundle(t, noCreds, "import", "--plain-http", "--quiet", "--target", target, archive); r.code != 1 || !strings.Contains(r.stderr, dst.Host) {
		t.Errorf("import without credentials: exit %d, stderr %q; want 1 naming %s", r.code, r.stderr, dst.Host)
	}

	creds := []string{"DOCKER_CONFIG=" + dst.DockerConfigDir}
	r := mustBundle(t, creds, "import", "--plain-http", "--quiet", "--json", "--target", target, archive)
	var irep unpack.Report
	if err := json.Unmarshal([]byte(r.stdout), &irep); err != nil {
		t.Fatalf("import --json printed no JSON report: %v\n%s", err, r.stdout)
	}
	if len(irep.Images) != 2 || len(irep.Failed) != 0 {
		t.Errorf("import report: %d images, failed %v; want 2 and none", len(irep.Images), irep.Failed)
	}

	// skopeo, an independent client, reads back the very same bytes.
	skopeoCreds := "--creds=" + dst.User + ":" + dst.Password
	for ref, want := range map[string]digest.Digest{
		target + "/" + src.appRepo + ":1.0":  src.app.Digest,
		target + "/" + src.toolRepo + ":2.0": src.tool.Digest,
	} {
		out := runCmd(t, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", skopeoCreds, "docker://"+ref)
		if out.code != 0 {
			t.Fatalf("skopeo inspect --raw %s: exit %d: %s", ref, out.code, out.stderr)
		}
		if got := digest.FromString(out.stdout); got != want {
			t.Errorf("%s reads back as %s, want %s", ref, got, want)
		}
	}

	// docker-registry has no referrers API: the referrers must be in
	// fallback tag indexes, the tree two deep.
	wantReferrers := map[digest.Digest][]digest.Digest{
		src.app.Digest:     {src.appSig.Digest, src.appSBOM.Digest},
		src.appSBOM.Digest: {src.sbomSig.Digest},
		src.tool.Digest:    {src.toolSig.Digest},
	}
	repoOf := map[digest.Digest]string{src.app.Digest: src.appRepo, src.appSBOM.Digest: src.appRepo, src.tool.Digest: src.toolRepo}
	for subject, want := range wantReferrers {
		got := map[digest.Digest]bool{}
		for _, d := range dst.ListReferrers(t, "mirror/"+repoOf[subject], subject) {
			got[d.Digest] = true
		}
		for _, w := range want {
			if !got[w] {
				t.Errorf("referrer %s of %s missing on the target (found %v)", w, subject, got)
			}
		}
	}
}

func TestImportOverTLSNeedsInsecureOrCAForSelfSignedCert(t *testing.T) {
	needTools(t, testregistry.RegistryBinary)
	src := seed(t)
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	export(t, archive, []string{"--no-referrers"}, src.toolRef)
	dst := testregistry.StartProcess(t, testregistry.ProcessOptions{TLS: true})
	ca, err := os.ReadFile(dst.CACertPath)
	if err != nil {
		t.Fatal(err)
	}
	// containerd trusts any certificate on 127.0.0.1 unless hosts.toml says
	// otherwise; a real air-gapped registry is not on localhost, so the
	// test makes 127.0.0.1 behave like one.
	strict := hostsDir(t, dst.Host, nil)
	withCA := hostsDir(t, dst.Host, ca)

	r := bundle(t, nil, "import", "--quiet", "--hosts-dir", strict, "--target", dst.Host, archive)
	if r.code != 1 || !strings.Contains(r.stderr, "--insecure") {
		t.Errorf("import to a self-signed registry: exit %d, stderr %q; want 1 mentioning --insecure", r.code, r.stderr)
	}
	if _, _, ok := dst.GetManifest(t, src.toolRepo, "2.0"); ok {
		t.Errorf("%s:2.0 exists on the target after a refused import", src.toolRepo)
	}

	for name, flags := range map[string][]string{
		"insecure":        {"--insecure", "--hosts-dir", strict},
		"ca in hosts dir": {"--hosts-dir", withCA},
	} {
		t.Run(name, func(t *testing.T) {
			mustBundle(t, nil, append(append([]string{"import", "--quiet"}, flags...), "--target", dst.Host+"/"+strings.ReplaceAll(name, " ", "-"), archive)...)
			repo := strings.ReplaceAll(name, " ", "-") + "/" + src.toolRepo
			d, _, ok := dst.GetManifest(t, repo, "2.0")
			if !ok || d.Digest != src.tool.Digest {
				t.Errorf("%s:2.0 = %v (found %v), want %s", repo, d.Digest, ok, src.tool.Digest)
			}
		})
	}
}

// hostsDir writes a containerd hosts directory for host: HTTPS, verified,
// with ca as the only trusted root when given.
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

func TestSkopeoReadsAndCopiesUnpackedBundle(t *testing.T) {
	needTools(t, testregistry.RegistryBinary, "skopeo")
	src := seed(t)
	archive := filepath.Join(t.TempDir(), "b.tar")
	export(t, archive, []string{"--compress", "none"}, src.appRef, src.toolRef)
	dir := filepath.Join(t.TempDir(), "layout")
	untar(t, archive, dir)

	for name, want := range map[string]digest.Digest{src.appRef: src.app.Digest, src.toolRef: src.tool.Digest} {
		out := runCmd(t, nil, "skopeo", "inspect", "--raw", "oci:"+dir+":"+name)
		if out.code != 0 {
			t.Fatalf("skopeo inspect oci:%s:%s: exit %d: %s", dir, name, out.code, out.stderr)
		}
		if got := digest.FromString(out.stdout); got != want {
			t.Errorf("oci:%s reads as %s, want %s", name, got, want)
		}
	}
	if out := runCmd(t, nil, "skopeo", "inspect", "oci:"+dir+":"+src.toolRef); out.code != 0 || !strings.Contains(out.stdout, src.tool.Digest.String()) {
		t.Errorf("skopeo inspect oci:...:%s: exit %d, stdout lacks the digest: %s%s", src.toolRef, out.code, out.stdout, out.stderr)
	}

	dst := testregistry.StartProcess(t, testregistry.ProcessOptions{})
	copied := dst.Host + "/copied/app:1.0"
	out := runCmd(t, nil, "skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "oci:"+dir+":"+src.appRef, "docker://"+copied)
	if out.code != 0 {
		t.Fatalf("skopeo copy oci:...:%s docker://%s: exit %d: %s", src.appRef, copied, out.code, out.stderr)
	}
	if d, _, ok := dst.GetManifest(t, "copied/app", "1.0"); !ok || d.Digest != src.app.Digest {
		t.Errorf("skopeo-copied index is %s (found %v), want %s", d.Digest, ok, src.app.Digest)
	}
}

func TestExitStatus(t *testing.T) {
	dist := testregistry.NewDistribution(t)
	dir := t.TempDir()
	tests := []struct {
		name  string
		args  []string
		code  int
		files []string // must not exist afterwards
	}{
		{"unknown flag", []string{"export", "--frobnicate", dist.Ref("a", "1")}, 2, nil},
		{"missing REF", []string{"export", "-o", filepath.Join(dir, "x.tar")}, 2, []string{"x.tar"}},
		{"missing FILE", []string{"import", "--target", dist.Host}, 2, nil},
		{"bad compression", []string{"export", "--compress", "lz4", dist.Ref("a", "1")}, 2, nil},
		{"ref that does not exist", []string{"export", "--plain-http", "--quiet", "--cache", filepath.Join(dir, "cache"), "-o", filepath.Join(dir, "missing.tar.zst"), dist.Ref("nobody/here", "1.0")}, 1,
			[]string{"missing.tar.zst", "missing.tar.zst.partial", "missing.tar.zst.sha256"}},
		{"file that does not exist", []string{"import", "--plain-http", "--quiet", "--target", dist.Host, filepath.Join(dir, "absent.tar")}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bundle(t, nil, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstderr: %s", r.code, tt.code, r.stderr)
			}
			if r.stderr == "" {
				t.Error("no message on stderr")
			}
			for _, f := range tt.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s left behind", f)
				}
			}
		})
	}
}

func imageDigests(rep *pack.Report) map[digest.Digest]string {
	out := map[digest.Digest]string{}
	for _, im := range rep.Images {
		out[digest.Digest(im.Digest)] = im.Reference
	}
	return out
}

// untar extracts the regular files of archive into dir, refusing names
// that leave it.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("reading %s: %v", archive, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("%s: entry %q leaves the layout", archive, h.Name)
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeFrom(path, tr); err != nil {
			t.Fatalf("extracting %s: %v", h.Name, err)
		}
	}
}

func writeFrom(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

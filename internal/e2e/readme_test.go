package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/unpack"
)

// The host names the README uses, mapped by the walkthrough onto the
// registries it starts.
const (
	readmeSource  = "registry.example.com"
	readmeTarget  = "registry.internal:5000"
	readmeHostsCA = "/etc/containerd/certs.d"
)

// readmePlaceholderDigest matches the made-up digest the README exports
// team/app by; the walkthrough puts the real one in its place.
var readmePlaceholderDigest = regexp.MustCompile(`(` + regexp.QuoteMeta(readmeSource) + `/team/app)@sha256:[0-9a-f]{64}`)

// TestREADMEWalkthroughRunsEveryCommand runs every command of the README's
// ```sh blocks, in order, as a user following it would: the README cannot
// rot without this test failing on the line that rotted. The test only
// maps the README's hosts and paths onto what it starts (see substitute);
// a command it does not know how to run is run as it is, through sh, and
// must exit 0.
func TestREADMEWalkthroughRunsEveryCommand(t *testing.T) {
	needTools(t, testregistry.RegistryBinary, "skopeo", "make", "sha256sum", "tar", "zstd", "openssl")
	md, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	lines, err := readmeShellLines(string(md))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if len(lines) < 15 {
		t.Fatalf("found %d commands in README.md's sh blocks, want at least 15: is the extraction broken?", len(lines))
	}

	start := time.Now()
	w := newWalkthrough(t)
	t.Logf("registries seeded and started in %s", time.Since(start).Round(time.Millisecond))
	w.secureBlocks = secureBlocks(lines)
	checks := w.checks()
	matched := make([]bool, len(checks))
	for _, l := range lines {
		start := time.Now()
		res := w.run(l)
		t.Logf("%s (%s)", l, time.Since(start).Round(time.Millisecond))
		for i, c := range checks {
			if strings.Contains(l.text, c.match) {
				matched[i] = true
				c.check(t, l, res)
			}
		}
	}
	w.stopServe()
	for i, c := range checks {
		if !matched[i] {
			t.Errorf("no README command contains %q, which this test checks the outcome of: update the check with the README", c.match)
		}
	}
}

func TestReadmeShellLinesExtraction(t *testing.T) {
	tests := []struct {
		name    string
		md      string
		want    []string
		blocks  []int
		wantErr string
	}{
		{
			name:   "continuations joined, comments and prompts removed, blocks numbered",
			md:     "text\n```sh\n$ bundle export \\\n  -o a.tar r/a:1   # why\nmake demo\n```\nbundle outside\n```sh\nmkdir a && tar -C a -xf a.tar\n```\n",
			want:   []string{"bundle export -o a.tar r/a:1", "make demo", "mkdir a && tar -C a -xf a.tar"},
			blocks: []int{0, 0, 1},
		},
		{
			name:    "a command in a block that is not sh is refused",
			md:      "```\nbundle verify a.tar\n```\n",
			wantErr: "not a ```sh block",
		},
		{
			name:    "an unclosed block is refused",
			md:      "```sh\nbundle verify a.tar\n",
			wantErr: "never closed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readmeShellLines(tt.md)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			var blocks []int
			for _, l := range got {
				texts = append(texts, l.text)
				blocks = append(blocks, l.block)
			}
			if strings.Join(texts, "|") != strings.Join(tt.want, "|") || fmt.Sprint(blocks) != fmt.Sprint(tt.blocks) {
				t.Errorf("got %q in blocks %v, want %q in blocks %v", texts, blocks, tt.want, tt.blocks)
			}
		})
	}
}

// readmeLine is one command of a ```sh block.
type readmeLine struct {
	no    int    // line number in README.md of its first line
	block int    // which ```sh block, from 0
	text  string // continuations joined, comment and prompt removed
}

func (l readmeLine) String() string { return fmt.Sprintf("README.md:%d: %s", l.no, l.text) }

// readmeShellLines returns the commands of md's ```sh blocks. A command
// in a fenced block of another kind is an error: it would escape the
// walkthrough.
func readmeShellLines(md string) ([]readmeLine, error) {
	var out []readmeLine
	inBlock, isSh, block, open := false, false, -1, 0
	var cont *readmeLine
	for i, raw := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "```") {
			if !inBlock {
				isSh = strings.TrimSpace(strings.TrimPrefix(trimmed, "```")) == "sh"
				if isSh {
					block++
				}
				open = i + 1
			}
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		line := strings.TrimPrefix(trimmed, "$ ")
		if j := strings.Index(line, " #"); j >= 0 {
			line = strings.TrimSpace(line[:j])
		}
		if !isSh {
			if strings.HasPrefix(line, "bundle ") || strings.HasPrefix(trimmed, "$ ") {
				return nil, fmt.Errorf("line %d: %q is in a fenced block that is not a ```sh block, so no test runs it: make the block ```sh", i+1, line)
			}
			continue
		}
		if cont != nil {
			cont.text += " " + line
		} else {
			cont = &readmeLine{no: i + 1, block: block, text: line}
		}
		if strings.HasSuffix(cont.text, "\\") {
			cont.text = strings.TrimSpace(strings.TrimSuffix(cont.text, "\\"))
			continue
		}
		if cont.text != "" {
			out = append(out, *cont)
		}
		cont = nil
	}
	if inBlock {
		return nil, fmt.Errorf("the code block opened on line %d is never closed", open)
	}
	return out, nil
}

// walkthrough is the world the README's commands run in: a source
// registry for registry.example.com, docker-registry processes for
// registry.internal:5000, a working directory and a HOME of its own.
type walkthrough struct {
	t    *testing.T
	root string // the repository, where make runs
	work string // where every other command runs
	env  []string

	src       *testregistry.Registry
	app       testregistry.Index
	db        testregistry.Image
	sig, sbom ocispec.Descriptor

	// plain stands for registry.internal:5000 where the README shows no
	// authentication; secure (htpasswd and TLS) in the blocks that log in
	// or name a CA.
	plain, secure *testregistry.Process
	hostsDir      string

	serve          *exec.Cmd
	serveStderr    *bytes.Buffer
	serveREADME    string // the --addr the README gives bundle serve
	serveAddr      string // the address it really listens on
	secureBlocks   map[int]bool
	bundleCommands *regexp.Regexp
}

func newWalkthrough(t *testing.T) *walkthrough {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	w := &walkthrough{t: t, root: root, work: t.TempDir()}
	home := t.TempDir()
	// A HOME of its own: no user's credentials or cache leak in, and
	// `~/.docker/config.json` starts without any login, as on a fresh host.
	w.env = []string{
		"HOME=" + home,
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"DOCKER_CONFIG=",
		"PATH=" + filepath.Dir(bundleBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	// Go's caches live under HOME by default: keep the real ones, or
	// `make demo` rebuilds the world from nothing (tens of seconds).
	out, err := exec.CommandContext(t.Context(), "go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	goEnv := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, name := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		if i < len(goEnv) {
			w.env = append(w.env, name+"="+goEnv[i])
		}
	}

	w.src = testregistry.NewReferrersAPI(t)
	w.app = w.src.PushIndex(t, "team/app", "1.0", []string{"linux/amd64", "linux/arm64"}, testregistry.ImageSpec{Seed: 51, Gzip: true}, false)
	w.sig = w.src.PushReferrer(t, "team/app", w.app.Desc, sigType, nil)
	w.sbom = w.src.PushReferrer(t, "team/app", w.app.Desc, sbomType, nil)
	w.db = w.src.PushImage(t, "team/db", "2.3", testregistry.ImageSpec{Seed: 52, Gzip: true})
	w.src.PushReferrer(t, "team/db", w.db.Desc, sigType, nil)

	w.plain = testregistry.StartProcess(t, testregistry.ProcessOptions{})
	w.secure = testregistry.StartProcess(t, testregistry.ProcessOptions{Htpasswd: true, TLS: true})
	ca, err := os.ReadFile(w.secure.CACertPath)
	if err != nil {
		t.Fatal(err)
	}
	w.hostsDir = hostsDir(t, w.secure.Host, ca)
	w.bundleCommands = regexp.MustCompile(`(^|[\s;&|])(bundle (?:export|import))(\s)`)
	return w
}

// run runs one README command and fails the test, naming the line, unless
// it exits 0.
func (w *walkthrough) run(l readmeLine) result {
	t := w.t
	t.Helper()
	fields := strings.Fields(l.text)
	switch {
	case len(fields) >= 2 && fields[0] == "docker" && fields[1] == "login":
		return w.dockerLogin(l, fields)
	case len(fields) >= 2 && fields[0] == "make":
		return w.make(l, fields[1:])
	case len(fields) >= 2 && fields[0] == "bundle" && fields[1] == "serve":
		w.startServe(l, fields[2:])
		return result{}
	}
	cmdline := w.substitute(l)
	res := w.sh(w.work, cmdline)
	if res.code != 0 {
		t.Fatalf("%s\nexit %d; ran in %s:\n  %s\nstdout:\n%s\nstderr:\n%s", l, res.code, w.work, cmdline, res.stdout, res.stderr)
	}
	return res
}

func (w *walkthrough) sh(dir, cmdline string) result {
	w.t.Helper()
	return runIn(w.t, dir, w.env, nil, "sh", "-c", cmdline)
}

// substitute maps the README's hosts, digest and paths onto the
// walkthrough's. The in-process source and the plain docker-registry
// speak HTTP where the README's registries speak HTTPS, so a bundle
// command that reaches one of them gets --plain-http if it lacks it.
func (w *walkthrough) substitute(l readmeLine) string {
	s := readmePlaceholderDigest.ReplaceAllString(l.text, "${1}@"+w.app.Desc.Digest.String())
	s = strings.ReplaceAll(s, readmeSource, w.src.Host)
	target := w.plain.Host
	if w.secureBlocks[l.block] {
		target = w.secure.Host
	}
	s = strings.ReplaceAll(s, readmeTarget, target)
	s = strings.ReplaceAll(s, readmeHostsCA, w.hostsDir)
	if w.serveREADME != "" {
		s = strings.ReplaceAll(s, w.serveREADME, w.serveAddr)
	}
	// A spec file names its hosts inside the file, not on the line.
	specFile := strings.Contains(s, " -f ")
	if (strings.Contains(s, w.src.Host) || strings.Contains(s, w.plain.Host) || specFile) && !strings.Contains(s, "--plain-http") {
		s = w.bundleCommands.ReplaceAllString(s, "${1}${2} --plain-http${3}")
	}
	return s
}

// secureBlocks are the blocks that log in or name a CA or --insecure:
// there registry.internal:5000 is the registry with htpasswd and TLS.
func secureBlocks(lines []readmeLine) map[int]bool {
	secure := map[int]bool{}
	for _, l := range lines {
		if strings.HasPrefix(l.text, "docker login ") || strings.Contains(l.text, "--hosts-dir") || strings.Contains(l.text, "--insecure") {
			secure[l.block] = true
		}
	}
	return secure
}

// dockerLogin stands in for `docker login HOST`, which is not run (docker
// is no dependency): later commands get a DOCKER_CONFIG holding what it
// would have written.
func (w *walkthrough) dockerLogin(l readmeLine, fields []string) result {
	w.t.Helper()
	if len(fields) != 3 || fields[2] != readmeTarget {
		w.t.Fatalf("%s\nthe test maps `docker login %s` only: log in to the air-gapped registry, or teach the test the new host", l, readmeTarget)
	}
	w.env = append(w.env, "DOCKER_CONFIG="+w.secure.DockerConfigDir)
	return result{}
}

// make runs a make target in the repository, building into a temporary
// BIN so that the tree stays clean. `make test` is the one target not
// run: it runs this very test. The test checks that it still does.
func (w *walkthrough) make(l readmeLine, targets []string) result {
	t := w.t
	t.Helper()
	if len(targets) == 1 && targets[0] == "test" {
		res := w.sh(w.root, "make -n test")
		if res.code != 0 || !strings.Contains(res.stdout, "./internal/e2e/") {
			t.Fatalf("%s\n`make -n test` exit %d does not run ./internal/e2e/ (this test):\n%s%s", l, res.code, res.stdout, res.stderr)
		}
		return res
	}
	cmdline := l.text + " BIN=" + filepath.Join(t.TempDir(), "bundle")
	res := w.sh(w.root, cmdline)
	if res.code != 0 {
		t.Fatalf("%s\nexit %d; ran in %s:\n  %s\nstdout:\n%s\nstderr:\n%s", l, res.code, w.root, cmdline, res.stdout, res.stderr)
	}
	return res
}

// startServe runs `bundle serve` in the background, as the README's user
// would in another terminal, on a free port and a temporary directory;
// the address it prints stands in for the README's from then on.
func (w *walkthrough) startServe(l readmeLine, args []string) {
	t := w.t
	t.Helper()
	// A second `bundle serve` in the README replaces the first, as its
	// user would stop one (Ctrl-C) before starting the next on its port.
	w.stopServe()
	w.serve, w.serveREADME = nil, ""
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--dir":
			args[i+1] = t.TempDir()
		case "--addr":
			w.serveREADME = args[i+1]
			args[i+1] = "127.0.0.1:0"
		}
	}
	if w.serveREADME == "" {
		t.Fatalf("%s\nno --addr HOST:PORT: the test needs it to know which address later commands use", l)
	}
	w.serve = exec.CommandContext(t.Context(), bundleBin, append([]string{"serve"}, args...)...)
	w.serve.Env = append(os.Environ(), w.env...)
	w.serve.Dir = w.work // where the README's bundle files are
	stdout, err := w.serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.serveStderr = &bytes.Buffer{}
	w.serve.Stderr = w.serveStderr
	if err := w.serve.Start(); err != nil {
		t.Fatalf("%s\nstarting %s: %v", l, bundleBin, err)
	}
	cmd := w.serve
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			cmd.Wait()
			t.Fatalf("%s\nbundle serve printed no address:\n%s", l, w.serveStderr.String())
		}
		w.serveAddr = a
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s\nbundle serve printed no address within 20s:\n%s", l, w.serveStderr.String())
	}
}

// stopServe stops `bundle serve` as its user would, with Ctrl-C.
func (w *walkthrough) stopServe() {
	if w.serve == nil {
		return
	}
	if err := w.serve.Process.Signal(syscall.SIGINT); err != nil {
		w.t.Fatalf("interrupting bundle serve: %v", err)
	}
	if err := w.serve.Wait(); err != nil {
		w.t.Errorf("bundle serve after Ctrl-C: %v, want exit 0\n%s", err, w.serveStderr.String())
	}
}

// readmeCheck checks what the README command containing match did, beyond
// its exit status.
type readmeCheck struct {
	match string
	check func(t *testing.T, l readmeLine, res result)
}

func (w *walkthrough) checks() []readmeCheck {
	inspect := func(t *testing.T, l readmeLine, file string) string {
		t.Helper()
		r := w.sh(w.work, "bundle inspect --json "+file)
		if r.code != 0 {
			t.Fatalf("%s\nbundle inspect --json %s: exit %d: %s", l, file, r.code, r.stderr)
		}
		return r.stdout
	}
	holds := func(t *testing.T, l readmeLine, file, listing string, want map[string]digest.Digest, has bool) {
		t.Helper()
		for name, d := range want {
			if strings.Contains(listing, d.String()) != has {
				t.Errorf("%s\n%s holds %s %s: %v, want %v", l, file, name, d, !has, has)
			}
		}
	}
	return []readmeCheck{
		{"team/db:2.3", func(t *testing.T, l readmeLine, _ result) {
			for _, f := range []string{"app.tar.zst", "app.tar.zst.sha256"} {
				if _, err := os.Stat(filepath.Join(w.work, f)); err != nil {
					t.Errorf("%s\nno %s afterwards: %v", l, f, err)
				}
			}
			listing := inspect(t, l, "app.tar.zst")
			holds(t, l, "app.tar.zst", listing, map[string]digest.Digest{
				"team/app:1.0": w.app.Desc.Digest, "team/db:2.3": w.db.Desc.Digest, "the SBOM": w.sbom.Digest, "the signature": w.sig.Digest,
			}, true)
		}},
		{"--artifact-type " + sbomType, func(t *testing.T, l readmeLine, _ result) {
			listing := inspect(t, l, "app.tar.zst")
			holds(t, l, "app.tar.zst", listing, map[string]digest.Digest{"team/app:1.0": w.app.Desc.Digest, "the SBOM": w.sbom.Digest}, true)
			holds(t, l, "app.tar.zst", listing, map[string]digest.Digest{"team/db:2.3": w.db.Desc.Digest, "the signature": w.sig.Digest}, false)
		}},
		{"--no-referrers", func(t *testing.T, l readmeLine, _ result) {
			listing := inspect(t, l, "app.tar.gz")
			holds(t, l, "app.tar.gz", listing, map[string]digest.Digest{"team/app@digest": w.app.Desc.Digest}, true)
			holds(t, l, "app.tar.gz", listing, map[string]digest.Digest{"the SBOM": w.sbom.Digest, "the signature": w.sig.Digest}, false)
		}},
		{"sha256sum -c app.tar.zst.sha256", func(t *testing.T, l readmeLine, res result) {
			if !strings.Contains(res.stdout, "app.tar.zst: OK") {
				t.Errorf("%s\nsha256sum did not check app.tar.zst:\n%s", l, res.stdout)
			}
		}},
		{"--split-size dvd --parity 2 --sign-key", func(t *testing.T, l readmeLine, _ result) {
			for _, name := range []string{"app-dvd.tar.zst.000", "app-dvd.tar.zst.p000", "app-dvd.tar.zst.p001", "app-dvd.tar.zst.sha256.sig"} {
				if _, err := os.Stat(filepath.Join(w.work, name)); err != nil {
					t.Errorf("%s\ndid not write %s: %v", l, name, err)
				}
			}
		}},
		{"sha256sum -c app-dvd.tar.zst.sha256", func(t *testing.T, l readmeLine, res result) {
			if !strings.Contains(res.stdout, "app-dvd.tar.zst.000: OK") || !strings.Contains(res.stdout, "app-dvd.tar.zst.p001: OK") {
				t.Errorf("%s\nsha256sum did not check every part:\n%s", l, res.stdout)
			}
		}},
		{"import --key bundle.pub", func(t *testing.T, l readmeLine, _ result) {
			d, _, ok := w.plain.GetManifest(t, "team/app", "1.0")
			if !ok || d.Digest != w.app.Desc.Digest {
				t.Errorf("%s\nteam/app:1.0 on the target is %s (found %v), want %s", l, d.Digest, ok, w.app.Desc.Digest)
			}
		}},
		{"--target " + readmeTarget + "/mirror app.tar.zst", func(t *testing.T, l readmeLine, _ result) {
			if strings.Contains(l.text, "--dry-run") {
				return
			}
			d, _, ok := w.plain.GetManifest(t, "mirror/team/app", "1.0")
			if !ok || d.Digest != w.app.Desc.Digest {
				t.Errorf("%s\nmirror/team/app:1.0 on the target is %s (found %v), want %s", l, d.Digest, ok, w.app.Desc.Digest)
			}
			got := map[digest.Digest]bool{}
			for _, r := range w.plain.ListReferrers(t, "mirror/team/app", w.app.Desc.Digest) {
				got[r.Digest] = true
			}
			if !got[w.sbom.Digest] || got[w.sig.Digest] {
				t.Errorf("%s\nreferrers of team/app:1.0 on the target %v: want the SBOM %s and not the signature %s (exported with --artifact-type %s)", l, got, w.sbom.Digest, w.sig.Digest, sbomType)
			}
		}},
		{"--hosts-dir", func(t *testing.T, l readmeLine, _ result) {
			d, _, ok := w.secure.GetManifest(t, "team/app", "1.0")
			if !ok || d.Digest != w.app.Desc.Digest {
				t.Errorf("%s\nteam/app:1.0 on the registry with TLS and login is %s (found %v), want %s", l, d.Digest, ok, w.app.Desc.Digest)
			}
		}},
		{"--target 127.0.0.1:", func(t *testing.T, l readmeLine, _ result) {
			if got := manifestDigest(t, "http://"+w.serveAddr+"/v2/team/app/manifests/1.0"); got != w.app.Desc.Digest {
				t.Errorf("%s\nteam/app:1.0 on bundle serve is %s, want %s", l, got, w.app.Desc.Digest)
			}
		}},
		{"skopeo inspect --tls-verify=false docker://", func(t *testing.T, l readmeLine, res result) {
			var got struct{ Digest digest.Digest }
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("%s\nskopeo printed no JSON: %v\n%s", l, err, res.stdout)
			}
			if got.Digest != w.app.Desc.Digest && got.Digest != w.app.Children[0].Desc.Digest {
				t.Errorf("%s\nskopeo reads %s from bundle serve, want team/app:1.0 (%s) or its linux/amd64 manifest", l, got.Digest, w.app.Desc.Digest)
			}
		}},
		{"skopeo inspect oci:", func(t *testing.T, l readmeLine, res result) {
			var got struct{ Digest digest.Digest }
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("%s\nskopeo printed no JSON: %v\n%s", l, err, res.stdout)
			}
			want := map[digest.Digest]bool{w.app.Desc.Digest: true}
			for _, c := range w.app.Children {
				want[c.Desc.Digest] = true
			}
			if !want[got.Digest] {
				t.Errorf("%s\nskopeo reads %s from the unpacked bundle, want team/app:1.0 (%s) or one of its platforms", l, got.Digest, w.app.Desc.Digest)
			}
		}},
		{"--dry-run", func(t *testing.T, l readmeLine, res result) {
			if strings.Contains(l.text, "bundle export") {
				return // the plan of an export: TestExportDryRun* in pack
			}
			var rep unpack.Report
			if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
				t.Fatalf("%s\n--json printed no JSON report on stdout: %v\n%s", l, err, res.stdout)
			}
			if !rep.DryRun || len(rep.Images) == 0 {
				t.Errorf("%s\nreport dryRun=%v with %d images, want a dry run of at least one", l, rep.DryRun, len(rep.Images))
			}
			for _, im := range rep.Images {
				if im.Pushed {
					t.Errorf("%s\na dry run reports %s pushed", l, im.Target)
				}
			}
		}},
	}
}

// manifestDigest is the digest of the manifest at url, read as any
// registry client would.
func manifestDigest(t *testing.T, url string) digest.Digest {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join([]string{ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return digest.FromBytes(body)
}

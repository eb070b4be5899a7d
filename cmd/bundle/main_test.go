package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/unpack"
)

func runBundle(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), append([]string{"bundle"}, args...), streams{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func TestFlagsAfterArgumentsAreMovedInFront(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"import as DESIGN.md writes it", []string{"import", "b.tar.zst", "--target", "r.internal"},
			[]string{"import", "--target", "r.internal", "b.tar.zst"}},
		{"bool flag takes no value", []string{"import", "b.tar", "--dry-run", "--target", "h"},
			[]string{"import", "--dry-run", "--target", "h", "b.tar"}},
		{"flag=value", []string{"export", "r/a:1", "-o=x.tar", "r/b:2"},
			[]string{"export", "-o=x.tar", "r/a:1", "r/b:2"}},
		{"repeated flags keep their order", []string{"export", "r/a:1", "--platform", "linux/arm64", "-o", "x.tar", "--platform", "linux/amd64"},
			[]string{"export", "--platform", "linux/arm64", "-o", "x.tar", "--platform", "linux/amd64", "r/a:1"}},
		{"stdin stays an argument", []string{"import", "-", "--target", "h"},
			[]string{"import", "--target", "h", "-"}},
		{"after -- nothing moves", []string{"verify", "--", "-odd.tar", "--json"},
			[]string{"verify", "--", "-odd.tar", "--json"}},
		{"unknown command untouched", []string{"frobnicate", "x", "--y"},
			[]string{"frobnicate", "x", "--y"}},
		{"subcommand flags", []string{"cache", "ls", "--cache", "/tmp/c"},
			[]string{"cache", "ls", "--cache", "/tmp/c"}},
		{"subcommand flags after an argument", []string{"completion", "bash", "--help"},
			[]string{"completion", "--help", "bash"}},
	}
	app := newApp(streams{in: strings.NewReader(""), out: io.Discard, err: io.Discard}, true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hoistFlags(app, append([]string{"bundle"}, tt.in...))
			if want := append([]string{"bundle"}, tt.want...); !slices.Equal(got, want) {
				t.Errorf("hoistFlags(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
	// And the commands run: the file is still the argument, the flag set.
	code, _, stderr := runBundle(t, "verify", filepath.Join(t.TempDir(), "absent.tar"), "--json")
	if code != exitFailed || !strings.Contains(stderr, "absent.tar") {
		t.Errorf("verify FILE --json: exit %d, stderr %q; want exit 1 naming the file", code, stderr)
	}
}

func TestBadUsageExitsTwoAndSaysWhat(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"export", "--bogus", "r/a:1"}, "bogus"},
		{"export without REF", []string{"export", "-o", "x.tar"}, "missing REF"},
		{"flag after --", []string{"export", "-o", "x.tar", "--", "r/a:1", "--platform"}, "put flags before"},
		{"bad compression", []string{"export", "--compress", "xz", "r/a:1"}, `--compress "xz"`},
		{"bad concurrency", []string{"export", "--concurrency", "0", "r/a:1"}, "--concurrency 0"},
		{"import without FILE", []string{"import", "--target", "h:5000"}, "missing FILE"},
		{"import without target", []string{"import", "b.tar"}, "missing --target"},
		{"dry run without target", []string{"import", "--dry-run", "b.tar"}, "bundle inspect"},
		{"two files", []string{"import", "--target", "h", "a.tar", "b.tar"}, "one FILE"},
		{"bad referrers mode", []string{"import", "--referrers-mode", "both", "--target", "h", "b.tar"}, "--referrers-mode"},
		{"bad sparse index", []string{"import", "--sparse-index", "keep", "--target", "h", "b.tar"}, "--sparse-index"},
		{"verify without FILE", []string{"verify"}, "missing FILE"},
		{"inspect with unknown flag", []string{"inspect", "--yaml", "b.tar"}, "yaml"},
		{"serve without FILE or dir", []string{"serve"}, "missing FILE"},
		{"serve FILE and dir", []string{"serve", "--dir", "d", "b.tar"}, "not both"},
		{"serve bad log format", []string{"serve", "--log-format", "xml", "b.tar"}, "--log-format"},
		{"serve read-only FILE", []string{"serve", "--read-only", "b.tar"}, "apply to --dir"},
		{"serve cert without key", []string{"serve", "--tls-cert", "c.pem", "b.tar"}, "--tls-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runBundle(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "--help") {
				t.Errorf("stderr %q lacks %q or a pointer to --help", stderr, tt.want)
			}
			if tt.args != nil && stdout != "" {
				t.Errorf("stdout %q, want nothing on a usage error", stdout)
			}
		})
	}
}

func TestVersionPrintsAndExitsZero(t *testing.T) {
	code, stdout, _ := runBundle(t, "--version")
	if code != exitOK || !strings.HasPrefix(stdout, "bundle version ") {
		t.Errorf("--version: exit %d, stdout %q", code, stdout)
	}
}

func TestFailedExportExitsOneAndLeavesNoFile(t *testing.T) {
	// A port nobody listens on: taken, then released.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out := filepath.Join(t.TempDir(), "b.tar.zst")
	code, stdout, stderr := runBundle(t, "export", "--quiet", "--json", "--plain-http", "--cache", t.TempDir(), "-o", out, addr+"/missing/app:1.0")
	if code != exitFailed {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	if !strings.Contains(stderr, out) {
		t.Errorf("stderr %q does not name the output %s", stderr, out)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want no report for a failed export", stdout)
	}
	for _, f := range []string{out, out + ".partial", out + ".sha256"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s exists after a failed export", f)
		}
	}
}

func TestServeCommandPrintsAddressAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		defer pw.Close()
		done <- run(ctx, []string{"bundle", "serve", "--dir", t.TempDir(), "--addr", "127.0.0.1:0"}, streams{in: strings.NewReader(""), out: pw, err: &errb})
	}()
	addr, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the address: %v", err)
	}
	go io.Copy(io.Discard, pr)
	resp, err := http.Get("http://" + strings.TrimSpace(addr) + "/v2/")
	if err != nil {
		t.Fatalf("registry at %q not answering: %v", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ = %d, want 200", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve exited %d after cancel, want 0", code)
	}
}

func TestImportSummarySaysWhatLanded(t *testing.T) {
	rep := &unpack.Report{Target: "reg:5000/m", ReferrersMode: "tag", Images: []unpack.ImageReport{
		{Target: "reg:5000/m/a:1", Digest: "sha256:aa", Pushed: true, State: unpack.StatePushed},
		{Target: "reg:5000/m/b:1", Digest: "sha256:bb", State: unpack.StateThere},
		{Target: "reg:5000/m/c:1", Digest: "sha256:cc", State: unpack.StateFailed, Error: "manifest unknown"},
	}}
	tests := []struct {
		name   string
		failed bool
		dryRun bool
		want   []string
	}{
		{"complete", false, false, []string{"imported 3 image(s) (1 pushed, 1 already there, 1 failed)", "a:1  sha256:aa  pushed", "b:1  sha256:bb  already there", "failed: manifest unknown", "referrers mode tag"}},
		{"dry run", false, true, []string{"would import 3 image(s)", "b:1  sha256:bb  already there"}},
		{"failed but finished", true, false, []string{"imported 3 image(s) (1 pushed, 1 already there, 1 failed)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := *rep
			r.DryRun = tt.dryRun
			importSummary(&buf, &r, tt.failed)
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("summary lacks %q:\n%s", w, buf.String())
				}
			}
		})
	}
}

// TestHelpHasExamplesAndFitsA100ColumnTerminal renders every command's help.
func TestHelpHasExamplesAndFitsA100ColumnTerminal(t *testing.T) {
	app := newApp(streams{in: strings.NewReader(""), out: io.Discard, err: io.Discard}, true)
	for _, c := range app.Commands {
		t.Run(c.Name, func(t *testing.T) {
			code, stdout, _ := runBundle(t, c.Name, "--help")
			if code != exitOK {
				t.Fatalf("exit %d", code)
			}
			if !strings.Contains(stdout, "Examples:") {
				t.Errorf("no examples:\n%s", stdout)
			}
			for _, line := range strings.Split(stdout, "\n") {
				if len(line) > helpWidth {
					t.Errorf("%d columns: %q", len(line), line)
				}
			}
		})
	}
}

func TestVersionCommandSaysVersionGoAndPlatform(t *testing.T) {
	code, stdout, _ := runBundle(t, "version")
	if code != exitOK || !strings.HasPrefix(stdout, "bundle ") || !strings.Contains(stdout, "go 1.") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if code, stdout, _ := runBundle(t, "completion", shell); code != exitOK || !strings.Contains(stdout, "bundle") {
			t.Errorf("completion %s: exit %d, %q", shell, code, stdout)
		}
	}
	if code, _, _ := runBundle(t, "completion", "tcsh"); code != exitUsage {
		t.Errorf("completion tcsh: exit %d, want %d", code, exitUsage)
	}
}

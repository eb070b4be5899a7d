package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bundle-dev/bundle/internal/testregistry"
)

// TestNoSilentMistakes runs each mistake a platform engineer makes on the
// command line and checks the exit status and the first line of the
// message: what went wrong, where, and what to do.
func TestNoSilentMistakes(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	idx := reg.PushIndex(t, "team/multi", "1", []string{"linux/amd64", "linux/arm64"}, testregistry.ImageSpec{Seed: 3}, false)
	single := reg.PushImage(t, "team/single", "1", testregistry.ImageSpec{Seed: 4})
	reg.PushReferrer(t, "team/single", single.Desc, sbomType, nil)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.tar.zst")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"export", "--plain-http", "--quiet", "--cache", filepath.Join(dir, "cache")}
	out := func(name string) []string { return []string{"-o", filepath.Join(dir, name)} }
	tests := []struct {
		name  string
		args  []string
		code  int
		first string // the first line of stderr holds this
	}{
		{"unmatched platform of an index", append(append(common, out("a.tar.zst")...), "--platform", "linux/s390x", reg.Ref("team/multi", "1")),
			1, "has no platform matching --platform linux/s390x: it has linux/amd64, linux/arm64"},
		{"unmatched platform of a single image", append(append(common, out("b.tar.zst")...), "--platform", "linux/arm64", reg.Ref("team/single", "1")),
			1, "has no platform matching --platform linux/arm64: it has linux/amd64"},
		{"artifact type that matches nothing", append(append(common, out("c.tar.zst")...), "--artifact-type", "foo/bar", reg.Ref("team/single", "1")),
			1, "has no referrer of type foo/bar: it has " + sbomType},
		{"hosts dir that does not exist", append(append(common, out("d.tar.zst")...), "--hosts-dir", filepath.Join(dir, "nope"), reg.Ref("team/single", "1")),
			2, "--hosts-dir " + filepath.Join(dir, "nope") + " is not a directory"},
		{"extension that says no compression", append(append(common, out("x.tar.xz")...), reg.Ref("team/single", "1")),
			2, "the name does not say the compression"},
		{"extension that contradicts --compress", append(append(common, out("y.tar.gz")...), "--compress", "zstd", reg.Ref("team/single", "1")),
			2, "names a gzip archive but --compress says zstd"},
		{"output that exists", append(append(common, "-o", existing), reg.Ref("team/single", "1")),
			1, "exists: pass --force to replace it"},
		{"output that is a directory", append(append(common, "-o", dir), reg.Ref("team/single", "1")),
			2, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bundle(t, nil, tt.args...)
			first, _, _ := strings.Cut(r.stderr, "\n")
			if r.code != tt.code || !strings.Contains(first, tt.first) {
				t.Fatalf("exit %d, first line %q; want exit %d and %q\nstderr: %s", r.code, first, tt.code, tt.first, r.stderr)
			}
			if len(first) > 300 {
				t.Errorf("first line is %d characters long", len(first))
			}
		})
	}
	if data, err := os.ReadFile(existing); err != nil || string(data) != "keep me" {
		t.Errorf("the existing output was touched: %q %v", data, err)
	}
	_ = idx
}

// TestInterruptExitsWithTheSignalsStatus interrupts an export over a slow
// link: the convention is 128 plus the signal's number.
func TestInterruptExitsWithTheSignalsStatus(t *testing.T) {
	up := testregistry.NewDistribution(t)
	img := up.PushImage(t, "slow/app", "1", testregistry.ImageSpec{LayerSize: 4 << 20, Layers: 2})
	slow := testregistry.NewProxy(t, up, testregistry.Faults{BlobRate: 256 << 10})
	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.CommandContext(t.Context(), bundleBin, "export", "--plain-http", "--cache", filepath.Join(dir, "cache"), "-o", filepath.Join(dir, "b.tar"), slow.Ref("slow/app", "1"))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once a layer is on its way through the slow link.
			before := slow.Count("GET", "blob")
			tick := time.NewTicker(5 * time.Millisecond)
			deadline := time.After(20 * time.Second)
			for slow.Count("GET", "blob") == before {
				select {
				case <-tick.C:
				case <-deadline:
					t.Fatal("the export fetched no blob in 20 s")
				}
			}
			tick.Stop()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != want {
				t.Fatalf("exit %d after %s, want %d (%v)\n%s", code, sig, want, err, stderr.String())
			}
		})
	}
	_ = img
}

// TestWhatTheCommandsSay runs the commands that show what bundle does and
// checks their exit status and first line: --debug's request lines, the
// cache, and import --dry-run's state of each image (--authfile is tested
// in internal/remote, against a registry that asks for credentials).
func TestWhatTheCommandsSay(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	reg.PushImage(t, "team/app", "1", testregistry.ImageSpec{Seed: 5})
	target := testregistry.NewDistribution(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	out := filepath.Join(dir, "b.tar.zst")

	r := bundle(t, nil, "export", "--plain-http", "--quiet", "--debug", "--cache", cache, "-o", out, reg.Ref("team/app", "1"))
	first, _, _ := strings.Cut(r.stderr, "\n")
	if r.code != 0 || !strings.HasPrefix(first, "debug: ") || !strings.Contains(r.stderr, "/v2/team/app/manifests/1 200") {
		t.Fatalf("export --debug: exit %d\n%s", r.code, r.stderr)
	}

	r = bundle(t, nil, "cache", "ls", "--cache", cache)
	if r.code != 0 || !strings.HasPrefix(r.stdout, cache+": ") || !strings.Contains(r.stdout, " blobs, ") {
		t.Errorf("cache ls: exit %d, %q", r.code, r.stdout)
	}
	r = bundle(t, nil, "cache", "prune", "--cache", cache)
	if first, _, _ := strings.Cut(r.stderr, "\n"); r.code != 0 || !strings.HasPrefix(first, "removed ") {
		t.Errorf("cache prune: exit %d, %q", r.code, r.stderr)
	}

	want := []string{"push", "pushed", "already there", "already there"}
	for i, dry := range []bool{true, false, true, false} {
		args := []string{"import", "--plain-http", "--json", "--quiet", "--target", target.Host}
		if dry {
			args = append(args, "--dry-run")
		}
		r := bundle(t, nil, append(args, out)...)
		if r.code != 0 || !strings.Contains(r.stdout, `"state": "`+want[i]+`"`) {
			t.Errorf("import #%d (dry run %v): exit %d, want state %q\n%s%s", i, dry, r.code, want[i], r.stdout, r.stderr)
		}
	}
}

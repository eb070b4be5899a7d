package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// needRegistry skips without Debian's docker-registry, unless BUNDLE_E2E=1
// says it must be there.
func needRegistry(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		if os.Getenv("BUNDLE_E2E") == "1" {
			t.Fatalf("%s: %v", RegistryBinary, err)
		}
		t.Skipf("%s not installed", RegistryBinary)
	}
}

func startSource(t *testing.T, size int64) (*Registry, *DataSet) {
	t.Helper()
	needRegistry(t)
	ctx := context.Background()
	r, err := StartRegistry(ctx, RegistryBinary, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.RemoveAll() })
	p, _ := NewPlan(size, 5)
	ds, err := Build(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Push(ctx, NewClient(r.Host), ds); err != nil {
		t.Fatal(err)
	}
	return r, ds
}

func getJSON(t *testing.T, url, accept string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestPushedDataSetHasEveryTagBlobAndFallbackTag(t *testing.T) {
	r, ds := startSource(t, 2<<20)
	base := "http://" + r.Host + "/v2/"
	for _, ref := range ds.Refs {
		repo, tag, _ := strings.Cut(ref, ":")
		if code := getJSON(t, base+repo+"/manifests/"+tag, strings.Join(manifestTypes, ","), nil); code != http.StatusOK {
			t.Errorf("tag %s: status %d", ref, code)
		}
	}
	c := NewClient(r.Host)
	for _, b := range ds.Blobs {
		for _, repo := range ds.BlobRepos[b.Desc.Digest] {
			if _, err := c.Get(context.Background(), repo, b.Desc, false); err != nil {
				t.Errorf("blob in every repository that uses it: %v", err)
			}
		}
	}
	nested := 0
	for _, f := range ds.Fallback {
		var idx ocispec.Index
		if code := getJSON(t, base+f.Repo+"/manifests/"+f.Tags[0], ocispec.MediaTypeImageIndex, &idx); code != http.StatusOK {
			t.Fatalf("fallback tag %s:%s: status %d", f.Repo, f.Tags[0], code)
		}
		for _, d := range idx.Manifests {
			if d.ArtifactType == "" {
				t.Errorf("fallback tag %s lists %s without its artifactType", f.Tags[0], d.Digest)
			}
			var m ocispec.Manifest
			getJSON(t, base+f.Repo+"/manifests/"+d.Digest.String(), d.MediaType, &m)
			if m.Subject == nil || "sha256-"+m.Subject.Digest.Encoded() != f.Tags[0] {
				t.Errorf("referrer %s under fallback tag %s has subject %v", d.Digest, f.Tags[0], m.Subject)
			}
			if m.Subject != nil && m.Subject.MediaType == ocispec.MediaTypeImageManifest && m.ArtifactType == ArtifactSignature {
				var subject ocispec.Manifest
				getJSON(t, base+f.Repo+"/manifests/"+m.Subject.Digest.String(), ocispec.MediaTypeImageManifest, &subject)
				if subject.ArtifactType == ArtifactSBOM {
					nested++
				}
			}
		}
	}
	if nested != 16 {
		t.Errorf("found %d signatures on SBOMs through fallback tags, want 16", nested)
	}
}

var manifestTypes = []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.v2+json"}

func TestFloorsRunOnThePushedDataSet(t *testing.T) {
	r, ds := startSource(t, 2<<20)
	work := t.TempDir()
	f, err := measureFloors(context.Background(), Config{Registry: RegistryBinary}, r, ds, work)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range f.Rows() {
		if row.Err != "" || row.Sample.Wall <= 0 || row.Bytes < ds.UniqueBytes {
			t.Errorf("%s: err %q wall %v bytes %d (unique %d)", row.Step, row.Err, row.Sample.Wall, row.Bytes, ds.UniqueBytes)
		}
	}
	if left, _ := os.ReadDir(work); len(left) != 0 {
		t.Errorf("the floors left %d entries in the scratch directory", len(left))
	}
}

// fakeBundle stands in for the CLI so that the harness's own steps can be
// tested before the CLI works: it writes an archive, answers with JSON, and
// logs its arguments. Its import pushes nothing, which the harness must catch.
const fakeBundle = `#!/bin/sh
echo "$@" >> "$BENCH_ARGS_LOG"
case "$1" in
export)
  while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
  head -c 1000 /dev/zero > "$out" && echo '{"archiveSize":1000}' ;;
import) echo '{"blobsUploaded":0}' ;;
verify) echo '{"ok":true}' ;;
inspect) echo '{"bytesRead":5}' ;;
esac
`

func TestRunDrivesEveryStepAndCatchesAnImportThatPushedNothing(t *testing.T) {
	needRegistry(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bundle")
	if err := os.WriteFile(bin, []byte(fakeBundle), 0o755); err != nil {
		t.Fatal(err)
	}
	argsLog := filepath.Join(dir, "args")
	t.Setenv("BENCH_ARGS_LOG", argsLog)
	scratch := t.TempDir()
	res, err := Run(context.Background(), Config{Size: MinSize, Seed: 1, Runs: 2, Bundle: bin, Registry: RegistryBinary, TempDir: scratch})
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]Row{}
	for _, r := range res.Rows {
		results[r.Step] = r
	}
	for step, want := range map[string]string{
		"bundle export .tar":                      "", // the fake's speed against a real floor proves nothing
		"bundle import .tar → empty registry":     "FAIL",
		"bundle import .tar → full registry":      "SKIP",
		"bundle verify .tar":                      "",
		"bundle export .tar.zst":                  "",
		"bundle import .tar.zst → empty registry": "FAIL",
		// The fake is a shell script that can exit before its memory is
		// read, leaving the harness's figure as a ceiling that may be over
		// the limit; its bytes-read check is tested below.
		"bundle inspect .tar.zst": "",
	} {
		r, ok := results[step]
		if !ok {
			t.Errorf("no row %q", step)
			continue
		}
		if want != "" && r.Result() != want {
			t.Errorf("%s: %s (%s), want %s", step, r.Result(), r.Err, want)
		}
	}
	if r := results["bundle import .tar → empty registry"]; !strings.Contains(r.Err, "lacks a manifest") {
		t.Errorf("import into empty: err %q, want the missing manifest named", r.Err)
	}
	if c := results["bundle inspect .tar.zst"].Check; c == nil || !c.Known || c.Value != 0.005 || !c.Pass() {
		t.Errorf("inspect check = %+v, want 5 of 1000 bytes, passing", c)
	}
	if c := results["bundle export .tar.zst"].Check; c == nil || !c.Known {
		t.Errorf("export .tar.zst check = %+v, want a ratio to export .tar", c)
	}
	if !res.Failed() {
		t.Error("Failed() = false with failed imports")
	}
	// skopeo, the peer, is measured on the same data when it is installed
	// (CI installs it), and its rows carry no target of bundle's.
	if _, err := exec.LookPath("skopeo"); err == nil {
		for _, step := range []string{stepPeerExport, stepPeerImport} {
			r, ok := results[step]
			switch {
			case !ok:
				t.Errorf("no row %q with skopeo installed", step)
			case r.Err != "" || r.Sample.Wall <= 0 || r.Check != nil || r.RSSLimit != 0:
				t.Errorf("%s: err %q, wall %v, check %+v, RSS limit %d; want a plain measurement", step, r.Err, r.Sample.Wall, r.Check, r.RSSLimit)
			}
		}
	}

	exports, since := 0, 0
	fd, err := os.Open(argsLog)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	sc := bufio.NewScanner(fd)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if f[0] != "export" {
			continue
		}
		exports++
		n := 8 + 14
		if strings.Contains(sc.Text(), "--split-size") {
			n += 4 // --split-size SIZE --parity 2
		}
		if strings.Contains(sc.Text(), "--since ") {
			n += 2
			since++
		}
		if !strings.Contains(sc.Text(), "--plain-http") || !strings.Contains(sc.Text(), "--cache") || len(f) != n {
			t.Errorf("export arguments %q: want --plain-http, --cache and the 14 references", sc.Text())
		}
	}
	// 2 formats × 2 runs, 2 split runs; then the sync's base, and its full
	// and incremental exports × 2 runs.
	if exports != 4+2+1+2+2 || since != 2 {
		t.Errorf("%d exports (%d with --since), want 11 (2)", exports, since)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("Run left %d entries in its temp dir", len(left))
	}
}

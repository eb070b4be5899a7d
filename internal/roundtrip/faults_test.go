package roundtrip

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/pack"
	"github.com/bundle-dev/bundle/unpack"
)

// The link of issue 11: a proxy in front of each registry fails a share of
// requests at random (503; 429 with Retry-After; a reset mid-body; a
// stall; a body cut short). Export and import must finish for every seed,
// carry exactly what a fault-free run carries, and leave the target exactly
// as a fault-free run does: no duplicate fallback entries, no stray tags.
//
// make test runs 20 seeds at 20%; make soak runs more seeds at more rates:
// BUNDLE_FAULT_SEEDS (default 20) and BUNDLE_FAULT_RATES (default 0.2,
// comma-separated).
func TestTransfersSurviveAFaultyLink(t *testing.T) {
	seeds := envInt(t, "BUNDLE_FAULT_SEEDS", 20)
	rates := envRates(t, "BUNDLE_FAULT_RATES", []float64{0.2})
	src := testregistry.NewDistribution(t) // no referrers API: fallback tags
	seedFaultFixture(t, src)

	for _, rate := range rates {
		t.Run(fmt.Sprintf("%g%%", rate*100), func(t *testing.T) {
			base := carry(t, src, testregistry.Faults{})
			runs := make([]carried, seeds)
			t.Run("seeds", func(t *testing.T) {
				// Seeds run side by side, more than -parallel's CPU count:
				// a run mostly waits, on stalls and backoffs.
				var wg sync.WaitGroup
				sem := make(chan struct{}, seedsAtOnce)
				for seed := range seeds {
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer func() { <-sem; wg.Done() }()
						t.Run(strconv.Itoa(seed), func(t *testing.T) {
							faults := testregistry.Faults{Rate: rate, Seed: uint64(seed), Stall: faultStall}
							runs[seed] = carry(t, src, faults)
							base.compare(t, runs[seed])
						})
					}()
				}
				wg.Wait()
			})
			report(t, rate, base, runs)
		})
	}
}

// seedsAtOnce is how many seeds run at the same time.
const seedsAtOnce = 4

// The stall the proxy holds an answer for, and the client's stall timeout:
// short, so that the test stays fast, and in the proportion of the issue's
// 2 s stall to a timeout that cuts it.
const (
	faultStall   = time.Second
	stallTimeout = 250 * time.Millisecond
)

// faultyLinkOptions is the default policy with test-sized waits: the
// budget is the default one, which is what must hold. The backoff still
// grows to a quarter of a second, so that a long streak of failures (a
// machine so loaded that a registry in this process answers slower than
// the stall timeout) is waited out as a real one would be.
func faultyLinkOptions(t *testing.T) remote.Options {
	return remote.Options{
		PlainHTTP:       true,
		DockerConfigDir: t.TempDir(),
		MinBackoff:      time.Millisecond,
		MaxBackoff:      250 * time.Millisecond,
		MaxRetryAfter:   10 * time.Millisecond, // the proxy's 429s ask for 1 s
		StallTimeout:    stallTimeout,
	}
}

// seedFaultFixture puts the fixture on r: a multi-platform index
// with an SBOM signed on the SBOM (nested referrers), an image with an
// SBOM, its signature and a signature of that, an image with cosign tags.
// r has no referrers API, so the referrers are listed in fallback tags.
func seedFaultFixture(t *testing.T, r *testregistry.Registry) {
	idx := r.PushIndex(t, "team/multi", "2.0", []string{"linux/amd64", "linux/arm64"}, testregistry.ImageSpec{Seed: 50, Gzip: true, LayerSize: 32 << 10}, false)
	sbom := r.PushReferrer(t, "team/multi", idx.Desc, "application/spdx+json", map[string]string{"n": "index sbom"})
	r.PushReferrer(t, "team/multi", sbom, "application/vnd.dev.cosign.artifact.sig.v1+json", map[string]string{"n": "sbom sig"})
	r.PushReferrer(t, "team/multi", idx.Children[1].Desc, "application/spdx+json", map[string]string{"n": "arm64 sbom"})

	img := r.PushImage(t, "team/app", "1.0", testregistry.ImageSpec{Seed: 51, LayerSize: 64 << 10})
	appSBOM := r.PushReferrer(t, "team/app", img.Desc, "application/spdx+json", map[string]string{"n": "sbom"})
	sig := r.PushReferrer(t, "team/app", appSBOM, "application/vnd.dev.cosign.artifact.sig.v1+json", map[string]string{"n": "sig"})
	r.PushReferrer(t, "team/app", sig, "application/vnd.dev.cosign.artifact.sig.v1+json", map[string]string{"n": "counter"})

	signed := r.PushImage(t, "team/signed", "1.0", testregistry.ImageSpec{Seed: 52, Gzip: true})
	r.PushCosign(t, "team/signed", signed.Desc, "sig")
	r.PushCosign(t, "team/signed", signed.Desc, "att")
}

var faultRepos = []string{"team/multi", "team/app", "team/signed"}

func faultRefs(r *testregistry.Registry) []string {
	return []string{r.Ref("team/multi", "2.0"), r.Ref("team/app", "1.0"), r.Ref("team/signed", "1.0")}
}

// carried is what one export and import carried and left.
type carried struct {
	entries  []string          // the archive's entries, in order
	index    string            // its index.json, the source host taken out
	images   []string          // "reference digest referrers" of the export report
	target   map[string]string // "repo:tag" -> digest on the target
	requests int               // at both proxies
	injected map[testregistry.FaultKind]int
	took     time.Duration
}

// carry exports the fixture from src through a proxy with faults, and
// imports it through another into a fresh registry.
func carry(t *testing.T, src *testregistry.Registry, faults testregistry.Faults) carried {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	from := testregistry.NewProxy(t, src, faults)
	dst := testregistry.NewDistribution(t)
	toFaults := faults
	toFaults.Seed = faults.Seed + 1<<32
	to := testregistry.NewProxy(t, dst, toFaults)
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle.tar")
	rep, err := pack.Export(ctx, faultRefs(from), pack.Options{Output: out, CacheDir: filepath.Join(dir, "cache"), Remote: faultyLinkOptions(t)})
	if err != nil {
		t.Fatalf("export at %g%% faults (seed %d): %v", faults.Rate*100, faults.Seed, err)
	}
	if _, err := unpack.Import(ctx, out, unpack.Options{Target: to.Host + "/mirror", Remote: faultyLinkOptions(t)}); err != nil {
		t.Fatalf("import at %g%% faults (seed %d): %v", faults.Rate*100, faults.Seed, err)
	}
	c := carried{target: snapshot(t, dst), took: time.Since(start), injected: map[testregistry.FaultKind]int{}}
	c.entries, c.index = readBundle(t, out, from.Host)
	for _, img := range rep.Images {
		c.images = append(c.images, fmt.Sprintf("%s %s %d", strings.Replace(img.Reference, from.Host, "SRC", 1), img.Digest, img.Referrers))
	}
	for _, p := range []*testregistry.Registry{from, to} {
		c.requests += p.CountAll()
		for k, n := range p.Injected() {
			c.injected[k] += n
		}
	}
	return c
}

// snapshot is every tag of the fixture's repositories on r and what it
// names: a duplicate entry in a fallback index changes its digest, a stray
// tag adds a line.
func snapshot(t *testing.T, r *testregistry.Registry) map[string]string {
	out := map[string]string{}
	for _, repo := range faultRepos {
		for _, tag := range r.Tags(t, "mirror/"+repo) {
			d, _, ok := r.GetManifest(t, "mirror/"+repo, tag)
			if !ok {
				t.Fatalf("tag %s:%s is listed but not there", repo, tag)
			}
			out[repo+":"+tag] = d.Digest.String()
		}
	}
	return out
}

// readBundle lists the archive's entries and its index.json with host
// replaced, since every run reads from a proxy of its own.
func readBundle(t *testing.T, path, host string) ([]string, string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	var index []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == layout.IndexFile {
			if index, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	norm, _ := json.Marshal(idx)
	return names, strings.ReplaceAll(string(norm), host, "SRC")
}

// compare checks a run with faults against the fault-free one.
func (base carried) compare(t *testing.T, got carried) {
	t.Helper()
	if !slices.Equal(got.images, base.images) {
		t.Errorf("exported images %q, want %q", got.images, base.images)
	}
	if !slices.Equal(got.entries, base.entries) {
		t.Errorf("archive entries differ from a fault-free run:\n%q\nwant\n%q", got.entries, base.entries)
	}
	if got.index != base.index {
		t.Errorf("index.json differs from a fault-free run:\n%s\nwant\n%s", got.index, base.index)
	}
	for k, d := range base.target {
		if got.target[k] != d {
			t.Errorf("target %s = %q, want %s as after a fault-free run", k, got.target[k], d)
		}
	}
	for k, d := range got.target {
		if _, ok := base.target[k]; !ok {
			t.Errorf("stray tag on the target: %s -> %s", k, d)
		}
	}
}

// report logs requests and times against the fault-free run.
func report(t *testing.T, rate float64, base carried, runs []carried) {
	var reqs, took []int
	injected := map[testregistry.FaultKind]int{}
	for _, r := range runs {
		if r.requests == 0 {
			continue // failed
		}
		reqs = append(reqs, r.requests)
		took = append(took, int(r.took.Milliseconds()))
		for k, n := range r.injected {
			injected[k] += n
		}
	}
	if len(reqs) == 0 {
		return
	}
	slices.Sort(reqs)
	slices.Sort(took)
	t.Logf("%g%% faults: %d/%d seeds carried the fixture whole; requests per export+import: fault-free %d, with faults median %d (min %d, max %d); time: fault-free %v, with faults median %dms (max %dms); faults injected %v",
		rate*100, len(reqs), len(runs), base.requests, reqs[len(reqs)/2], reqs[0], reqs[len(reqs)-1],
		base.took.Round(time.Millisecond), took[len(took)/2], took[len(took)-1], injected)
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a whole number of at least 1", name, v)
	}
	return n
}

func envRates(t *testing.T, name string, def []float64) []float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []float64
	for _, s := range strings.Split(v, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r < 0 || r >= 1 {
			t.Fatalf("%s=%q: want rates in [0, 1), comma-separated", name, v)
		}
		out = append(out, r)
	}
	return out
}

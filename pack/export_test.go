package pack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
)

const (
	typeSBOM = "application/spdx+json"
	typeSig  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	typeVuln = "application/vnd.example.vuln-report.v1+json"
)

func TestExportSingleImageWritesLayoutAndChecksum(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "team/app", "1.0", testregistry.ImageSpec{Seed: 1})
			opts := testOptions(t, "app.tar")
			ref := r.Ref("team/app", "1.0")

			rep, err := Export(context.Background(), []string{ref}, opts)
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			a := readArchive(t, opts.Output)
			wantBlobs(t, a, imageDescs(img)...)
			if len(a.blobs) != 4 {
				t.Errorf("archive holds %d blobs, want 4 (manifest, config, 2 layers)", len(a.blobs))
			}
			e, ok := a.entry(ref)
			if !ok || e.Digest != img.Desc.Digest || e.Annotations["io.containerd.image.name"] != ref {
				t.Errorf("index.json entry for %s = %+v (found %v), want digest %s and both names", ref, e, ok, img.Desc.Digest)
			}
			if len(a.index.Manifests) != 1 {
				t.Errorf("index.json lists %d entries, want 1", len(a.index.Manifests))
			}
			wantSidecar(t, opts.Output, rep)
			if len(rep.Images) != 1 || rep.Images[0].Reference != ref || rep.Images[0].Digest != img.Desc.Digest.String() {
				t.Errorf("report images = %+v", rep.Images)
			}
			if rep.Blobs != 4 || rep.Manifests != 1 || rep.Compression != "none" {
				t.Errorf("report blobs %d manifests %d compression %q, want 4, 1, none", rep.Blobs, rep.Manifests, rep.Compression)
			}
			var total int64
			for _, d := range imageDescs(img) {
				total += d.Size
			}
			if rep.BytesTotal != total || rep.BytesFetched != total || rep.BytesCached != 0 {
				t.Errorf("report bytes total %d fetched %d cached %d, want %d, %d, 0", rep.BytesTotal, rep.BytesFetched, rep.BytesCached, total, total)
			}
		})
	}
}

func TestExportIndexCarriesEveryPlatform(t *testing.T) {
	r := testregistry.NewDistribution(t)
	idx := r.PushIndex(t, "multi", "v1", []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}, testregistry.ImageSpec{Seed: 2}, false)
	opts := testOptions(t, "multi.tar")

	rep, err := Export(context.Background(), []string{r.Ref("multi", "v1")}, opts)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	a := readArchive(t, opts.Output)
	wantBlobs(t, a, idx.Desc)
	for _, c := range idx.Children {
		wantBlobs(t, a, imageDescs(c)...)
	}
	if rep.Platforms != 3 || len(rep.Images[0].Platforms) != 3 {
		t.Errorf("report platforms %d %v, want 3", rep.Platforms, rep.Images[0].Platforms)
	}
	if !slices.Contains(rep.Images[0].Platforms, "linux/arm/v7") {
		t.Errorf("report platforms %v lack linux/arm/v7", rep.Images[0].Platforms)
	}
	if rep.Manifests != 4 {
		t.Errorf("report manifests = %d, want 4", rep.Manifests)
	}
}

func TestExportFollowsNestedReferrers(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "app", "1", testregistry.ImageSpec{Seed: 3})
			sbom := r.PushReferrer(t, "app", img.Desc, typeSBOM, map[string]string{"n": "sbom"})
			sig := r.PushReferrer(t, "app", sbom, typeSig, map[string]string{"n": "sig-on-sbom"})
			counter := r.PushReferrer(t, "app", sig, typeSig, map[string]string{"n": "countersig"})
			opts := testOptions(t, "nested.tar.zst")

			rep, err := Export(context.Background(), []string{r.Ref("app", "1")}, opts)
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			a := readArchive(t, opts.Output)
			wantBlobs(t, a, sbom, sig, counter)
			want := []digest.Digest{sbom.Digest, sig.Digest, counter.Digest}
			slices.Sort(want)
			if got := a.untagged(); !slices.Equal(got, want) {
				t.Errorf("untagged index.json entries = %v, want the three referrers %v", got, want)
			}
			for _, m := range a.index.Manifests {
				if m.Digest == sbom.Digest && (m.ArtifactType != typeSBOM || m.Annotations["n"] != "sbom") {
					t.Errorf("sbom entry %+v lacks its artifactType or annotations", m)
				}
			}
			if rep.Referrers != 3 || rep.Images[0].Referrers != 3 {
				t.Errorf("report referrers %d / image %d, want 3", rep.Referrers, rep.Images[0].Referrers)
			}
			// The source's fallback tag indexes stay behind: the importer builds its own.
			for _, s := range []ocispec.Descriptor{img.Desc, sbom, sig} {
				if d, _, ok := r.GetManifest(t, "app", graph.FallbackTag(s.Digest)); ok && a.has(d.Digest) {
					t.Errorf("fallback tag index %s of %s is in the archive", d.Digest, s.Digest)
				}
			}
		})
	}
}

func TestExportKeepsCosignTagsAsNamedEntries(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "signed", "v2", testregistry.ImageSpec{Seed: 4})
			sig := r.PushCosign(t, "signed", img.Desc, "sig")
			att := r.PushCosign(t, "signed", img.Desc, "att")
			opts := testOptions(t, "cosign.tar")

			_, err := Export(context.Background(), []string{r.Ref("signed", "v2")}, opts)
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			a := readArchive(t, opts.Output)
			for _, c := range []struct {
				suffix string
				desc   ocispec.Descriptor
			}{{"sig", sig}, {"att", att}} {
				ref := r.Host + "/signed:" + graph.FallbackTag(img.Desc.Digest) + "." + c.suffix
				e, ok := a.entry(ref)
				if !ok || e.Digest != c.desc.Digest {
					t.Errorf("index.json entry %s = %+v (found %v), want digest %s", ref, e, ok, c.desc.Digest)
				}
				wantBlobs(t, a, c.desc)
			}
		})
	}
}

func TestExportPlatformFilterKeepsIndexBytesAndAttestations(t *testing.T) {
	r := testregistry.NewDistribution(t)
	idx := r.PushIndex(t, "bx", "latest", []string{"linux/amd64", "linux/arm64"}, testregistry.ImageSpec{Seed: 5}, true)
	_, indexBytes, _ := r.GetManifest(t, "bx", "latest")
	opts := testOptions(t, "amd64.tar.gz")
	opts.Platforms = []string{"linux/amd64"}

	rep, err := Export(context.Background(), []string{r.Ref("bx", "latest")}, opts)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	a := readArchive(t, opts.Output)
	if got := a.blobs[idx.Desc.Digest]; string(got) != string(indexBytes) {
		t.Errorf("the index was rewritten: got %d bytes, want the source's %d", len(got), len(indexBytes))
	}
	wantBlobs(t, a, imageDescs(idx.Children[0])...)
	wantBlobs(t, a, idx.Attestations[0])
	for _, d := range []ocispec.Descriptor{idx.Children[1].Desc, idx.Children[1].Config, idx.Attestations[1]} {
		if a.has(d.Digest) {
			t.Errorf("arm64 object %s is in an amd64-only export", d.Digest)
		}
	}
	if !slices.Equal(rep.Images[0].Platforms, []string{"linux/amd64"}) {
		t.Errorf("report platforms = %v, want [linux/amd64]", rep.Images[0].Platforms)
	}
}

func TestExportDockerSchema2Image(t *testing.T) {
	r := testregistry.NewReferrersAPI(t)
	img := r.PushImage(t, "legacy", "old", testregistry.ImageSpec{Seed: 6, Docker: true, Gzip: true})
	opts := testOptions(t, "legacy.tar.zst")

	rep, err := Export(context.Background(), []string{r.Ref("legacy", "old")}, opts)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	a := readArchive(t, opts.Output)
	wantBlobs(t, a, imageDescs(img)...)
	if rep.Images[0].MediaType != graph.MediaTypeDockerManifest {
		t.Errorf("report media type %q, want %q", rep.Images[0].MediaType, graph.MediaTypeDockerManifest)
	}
	if e, _ := a.entry(r.Ref("legacy", "old")); e.MediaType != graph.MediaTypeDockerManifest {
		t.Errorf("index.json media type %q, want the Docker manifest type", e.MediaType)
	}
}

func TestExportStoresSharedBaseLayersOnce(t *testing.T) {
	r := testregistry.NewDistribution(t)
	base := r.PushImage(t, "base", "1", testregistry.ImageSpec{Seed: 7, Layers: 3, LayerSize: 8 << 10})
	var refs []string
	var images []testregistry.Image
	for i := range 6 {
		repo := "svc" + string(rune('a'+i))
		images = append(images, r.PushImage(t, repo, "1", testregistry.ImageSpec{Seed: int64(100 + i), Layers: 1, Shared: base.Layers}))
		refs = append(refs, r.Ref(repo, "1"))
	}
	opts := testOptions(t, "six.tar")

	rep, err := Export(context.Background(), refs, opts)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	a := readArchive(t, opts.Output) // fails on a duplicate entry
	for _, img := range images {
		wantBlobs(t, a, imageDescs(img)...)
	}
	if want := 6*3 + 3; len(a.blobs) != want {
		t.Errorf("archive holds %d blobs, want %d (6 manifests, configs, own layers + 3 shared)", len(a.blobs), want)
	}
	var shared int64
	for _, l := range base.Layers {
		shared += l.Size
	}
	if rep.BytesDeduped != 5*shared {
		t.Errorf("report bytes deduped = %d, want %d (5 extra copies of the base)", rep.BytesDeduped, 5*shared)
	}
	if len(a.index.Manifests) != 6 {
		t.Errorf("index.json lists %d images, want 6", len(a.index.Manifests))
	}
}

func TestExportCompressionRoundTrips(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "c", "1", testregistry.ImageSpec{Seed: 8, LayerSize: 256 << 10})
	for _, c := range []struct {
		name   string
		option layout.Compression
		want   string
	}{
		{"b.tar", "", "none"},
		{"b.tar.gz", "", "gzip"},
		{"b.tar.zst", "", "zstd"},
		{"b.tar.zst", layout.Zstd, "zstd"},
	} {
		t.Run(c.name+"/"+c.want, func(t *testing.T) {
			opts := testOptions(t, c.name)
			opts.Compression = c.option
			rep, err := Export(context.Background(), []string{r.Ref("c", "1")}, opts)
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			if rep.Compression != c.want {
				t.Errorf("compression %q, want %q", rep.Compression, c.want)
			}
			a := readArchive(t, opts.Output)
			wantBlobs(t, a, imageDescs(img)...)
			wantSidecar(t, opts.Output, rep)
		})
	}
}

// Blobs stream into the archive without passing through the cache; what a
// failed run had written whole must reach the cache all the same, from its
// partial archive, whatever the compression.
func TestExportRerunFetchesOnlyWhatFailed(t *testing.T) {
	for _, name := range []string{"resume.tar", "resume.tar.gz", "resume.tar.zst"} {
		t.Run(name, func(t *testing.T) {
			r := testregistry.NewDistribution(t)
			img := r.PushImage(t, "resume", "1", testregistry.ImageSpec{Seed: 9, Layers: 3})
			last := img.Layers[2]
			proxy := testregistry.NewProxy(t, r, testregistry.Faults{CorruptBlob: last.Digest})
			opts := testOptions(t, name)
			opts.Concurrency = 1 // archive order: the config and first layers land before the bad one
			var notices []string
			opts.Notice = func(format string, args ...any) { notices = append(notices, fmt.Sprintf(format, args...)) }

			_, err := Export(context.Background(), []string{proxy.Ref("resume", "1")}, opts)
			if err == nil {
				t.Fatal("Export through a corrupting proxy succeeded")
			}
			wantNoFiles(t, opts.Output)
			if !slices.ContainsFunc(notices, func(s string) bool { return strings.Contains(s, "run the same command again") }) {
				t.Errorf("notices %q do not say the fetched blobs were kept", notices)
			}

			r.ResetCounts()
			rep, err := Export(context.Background(), []string{r.Ref("resume", "1")}, opts)
			if err != nil {
				t.Fatalf("rerun: %v", err)
			}
			if n := r.Count("GET", "blob"); n != 1 {
				t.Errorf("rerun fetched %d blobs, want 1: only the one that failed", n)
			}
			if rep.BytesFetched != last.Size {
				t.Errorf("rerun fetched %d bytes, want %d", rep.BytesFetched, last.Size)
			}
			if want := img.Config.Size + img.Layers[0].Size + img.Layers[1].Size + img.Desc.Size; rep.BytesCached != want {
				t.Errorf("rerun reused %d bytes from the cache, want %d", rep.BytesCached, want)
			}
			wantBlobs(t, readArchive(t, opts.Output), imageDescs(img)...)
		})
	}
}

// An export cancelled halfway (Ctrl-C) keeps what it had written for the
// rerun, and leaves no archive behind.
func TestExportCancelledKeepsWhatItWrote(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "cancel", "1", testregistry.ImageSpec{Seed: 11, Layers: 3, LayerSize: 256 << 10})
	opts := testOptions(t, "cancel.tar.zst")
	opts.Concurrency = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel as the last layer starts: everything before it is written.
	opts.Progress = &cancelOn{id: img.Layers[2].Digest.String(), cancel: cancel}

	if _, err := Export(ctx, []string{r.Ref("cancel", "1")}, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Export = %v, want cancelled", err)
	}
	wantNoFiles(t, opts.Output)

	opts.Progress = nil
	r.ResetCounts()
	if _, err := Export(context.Background(), []string{r.Ref("cancel", "1")}, opts); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if n := r.Count("GET", "blob"); n != 1 {
		t.Errorf("rerun fetched %d blobs, want 1: the one cut off", n)
	}
	wantBlobs(t, readArchive(t, opts.Output), imageDescs(img)...)
}

// cancelOn cancels when the transfer of one blob starts.
type cancelOn struct {
	id     string
	cancel context.CancelFunc
}

func (c *cancelOn) Start(id, label string, size int64) {
	if id == c.id {
		c.cancel()
	}
}
func (c *cancelOn) Add(string, int64)        {}
func (c *cancelOn) Done(string, bool, error) {}

func TestExportRetriesTransientFaults(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "flaky", "1", testregistry.ImageSpec{Seed: 10, LayerSize: 512 << 10})
	for _, c := range []struct {
		name   string
		faults testregistry.Faults
	}{
		{"connection reset mid-body", testregistry.Faults{ResetBlob: img.Layers[1].Digest, ResetTimes: 2}},
		{"503", testregistry.Faults{Status: 503, StatusTimes: 2}},
	} {
		// Concurrency 1 leaves every blob to the archive writer, which
		// streams it and must resume a cut body at the offset it reached;
		// with more, fetchers ahead of it take blobs into the cache.
		for _, conc := range []int{1, 8} {
			t.Run(fmt.Sprintf("%s concurrency %d", c.name, conc), func(t *testing.T) {
				proxy := testregistry.NewProxy(t, r, c.faults)
				opts := testOptions(t, "flaky.tar")
				opts.Concurrency = conc
				_, err := Export(context.Background(), []string{proxy.Ref("flaky", "1")}, opts)
				if err != nil {
					t.Fatalf("Export: %v", err)
				}
				wantBlobs(t, readArchive(t, opts.Output), imageDescs(img)...)
			})
		}
	}
}

// A blob the registry keeps refusing costs one budget of attempts under the
// one policy, whoever fetches it (the archive writer streaming it or a
// prefetcher filling the cache), and the export ends with one line that
// says where, what and what to do. Before, the export's loop around the
// transport's loop made it 36 requests.
func TestExportGivesUpOnABlobAfterOneBudget(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "flaky", "1", testregistry.ImageSpec{Seed: 12})
	bad := img.Layers[0].Digest
	for _, conc := range []int{1, 8} {
		t.Run(fmt.Sprintf("concurrency %d", conc), func(t *testing.T) {
			proxy := testregistry.NewProxy(t, r, testregistry.Faults{Status: http.StatusServiceUnavailable, StatusTimes: 1000, StatusPath: bad.String()})
			opts := testOptions(t, "flaky.tar")
			opts.Concurrency = conc
			_, err := Export(context.Background(), []string{proxy.Ref("flaky", "1")}, opts)
			if err == nil {
				t.Fatal("Export succeeded through a registry refusing a blob")
			}
			if n, budget := proxy.CountPath("GET", bad.String()), opts.Remote.MaxRetries+1; n != budget {
				t.Errorf("%d GETs of the refused blob, want one budget, %d", n, budget)
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range []string{bad.String(), proxy.Ref("flaky", "1"), "503 Service Unavailable", "run the same command again"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if strings.Count(msg, "503 Service Unavailable") != 1 || strings.Contains(msg, "\n") || strings.Contains(msg, "?") {
				t.Errorf("error %q: want one line, the status once, no query", msg)
			}
			wantNoFiles(t, opts.Output)
		})
	}
}

func TestExportFailures(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "ok", "1", testregistry.ImageSpec{Seed: 11})
	r.PushSchema1(t, "old", "s1")
	corrupt := testregistry.NewProxy(t, r, testregistry.Faults{CorruptBlob: img.Layers[0].Digest})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	for _, c := range []struct {
		name    string
		ctx     context.Context
		ref     string
		output  string // "" means the test's own
		wantIs  error
		wantMsg []string
	}{
		{name: "digest mismatch names the digest", ref: corrupt.Ref("ok", "1"),
			wantMsg: []string{img.Layers[0].Digest.String(), corrupt.Ref("ok", "1")}},
		{name: "missing tag names the reference", ref: r.Ref("ok", "nope"),
			wantMsg: []string{r.Ref("ok", "nope")}},
		{name: "schema 1 refused", ref: r.Ref("old", "s1"), wantIs: graph.ErrSchema1,
			wantMsg: []string{r.Ref("old", "s1")}},
		{name: "cancelled", ctx: cancelled, ref: r.Ref("ok", "1"), wantIs: context.Canceled},
		{name: "missing output directory", ref: r.Ref("ok", "1"),
			output: filepath.Join(t.TempDir(), "absent", "b.tar"), wantMsg: []string{"absent"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions(t, "fail.tar")
			if c.output != "" {
				opts.Output = c.output
			}
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			rep, err := Export(ctx, []string{c.ref}, opts)
			if err == nil {
				t.Fatalf("Export succeeded: %+v", rep)
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Errorf("error %q is not %v", err, c.wantIs)
			}
			for _, m := range c.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			wantNoFiles(t, opts.Output)
		})
	}
}

func TestExportReferrerSelection(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.new(t)
			img := r.PushImage(t, "sel", "1", testregistry.ImageSpec{Seed: 12})
			sbom := r.PushReferrer(t, "sel", img.Desc, typeSBOM, map[string]string{"k": "sbom"})
			vuln := r.PushReferrer(t, "sel", img.Desc, typeVuln, map[string]string{"k": "vuln"})
			cos := r.PushCosign(t, "sel", img.Desc, "sig")

			for _, c := range []struct {
				name  string
				set   func(*Options)
				want  []ocispec.Descriptor
				avoid []ocispec.Descriptor
			}{
				{"no referrers", func(o *Options) { o.NoReferrers = true }, nil, []ocispec.Descriptor{sbom, vuln, cos}},
				{"artifact type", func(o *Options) { o.ArtifactTypes = []string{typeSBOM} }, []ocispec.Descriptor{sbom}, []ocispec.Descriptor{vuln}},
				{"all", func(*Options) {}, []ocispec.Descriptor{sbom, vuln, cos}, nil},
			} {
				t.Run(c.name, func(t *testing.T) {
					opts := testOptions(t, "sel.tar")
					c.set(&opts)
					rep, err := Export(context.Background(), []string{r.Ref("sel", "1")}, opts)
					if err != nil {
						t.Fatalf("Export: %v", err)
					}
					a := readArchive(t, opts.Output)
					wantBlobs(t, a, imageDescs(img)...)
					wantBlobs(t, a, c.want...)
					for _, d := range c.avoid {
						if a.has(d.Digest) {
							t.Errorf("referrer %s (%s) exported", d.Digest, d.ArtifactType)
						}
						for _, m := range a.index.Manifests {
							if m.Digest == d.Digest {
								t.Errorf("index.json lists the excluded referrer %s", d.Digest)
							}
						}
					}
					if len(c.want) == 0 && (rep.Referrers != 0 || len(a.index.Manifests) != 1) {
						t.Errorf("report referrers %d, index.json %d entries, want 0 and 1", rep.Referrers, len(a.index.Manifests))
					}
				})
			}
		})
	}
}

func TestExportRefusesBadArguments(t *testing.T) {
	for _, c := range []struct {
		name string
		refs []string
		set  func(*Options)
	}{
		{"no references", nil, func(*Options) {}},
		{"no output", []string{"127.0.0.1:1/x:1"}, func(o *Options) { o.Output = "" }},
		{"bad compression", []string{"127.0.0.1:1/x:1"}, func(o *Options) { o.Compression = "lz4" }},
		{"bad platform", []string{"127.0.0.1:1/x:1"}, func(o *Options) { o.Platforms = []string{"linux/amd64/v1/x"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions(t, "x.tar")
			c.set(&opts)
			if _, err := Export(context.Background(), c.refs, opts); err == nil {
				t.Fatal("Export accepted bad arguments")
			}
			if opts.Output != "" {
				wantNoFiles(t, opts.Output)
			}
		})
	}
}

func BenchmarkExport(b *testing.B) {
	r := testregistry.NewDistribution(b)
	const layerSize = 16 << 20
	r.PushImage(b, "bench", "1", testregistry.ImageSpec{Seed: 13, Layers: 4, LayerSize: layerSize})
	for _, name := range []string{"bench.tar", "bench.tar.zst"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(4 * layerSize)
			for b.Loop() {
				opts := testOptions(b, name) // a fresh cache: measure fetch and write
				if _, err := Export(context.Background(), []string{r.Ref("bench", "1")}, opts); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(filepath.Dir(opts.Output))
				b.StartTimer()
			}
		})
	}
}

func TestExportSkipsForeignLayersWithANotice(t *testing.T) {
	r := testregistry.NewReferrersAPI(t)
	img := r.PushImage(t, "win", "base", testregistry.ImageSpec{Seed: 14, Layers: 1})
	foreign := ocispec.Descriptor{
		MediaType: graph.MediaTypeDockerForeignLayer,
		Digest:    digest.FromString("a layer only its vendor serves"),
		Size:      1234,
		URLs:      []string{"https://vendor.invalid/layer"},
	}
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     graph.MediaTypeDockerManifest,
		"config":        img.Config,
		"layers":        []ocispec.Descriptor{foreign, img.Layers[0]},
	}
	data, _ := json.Marshal(m)
	man := r.PushManifest(t, "win", "fl", graph.MediaTypeDockerManifest, data)
	opts := testOptions(t, "win.tar")
	var notices []string
	opts.Notice = func(format string, args ...any) { notices = append(notices, fmt.Sprintf(format, args...)) }
	rec := &recorder{}
	opts.Progress = rec

	rep, err := Export(context.Background(), []string{r.Ref("win", "fl")}, opts)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	a := readArchive(t, opts.Output)
	wantBlobs(t, a, man, img.Config, img.Layers[0])
	if a.has(foreign.Digest) {
		t.Error("the foreign layer is in the archive")
	}
	if len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0], foreign.Digest.String()) {
		t.Errorf("report skipped = %v, want the foreign layer", rep.Skipped)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], foreign.Digest.String()) {
		t.Errorf("notices = %q, want one naming the foreign layer", notices)
	}
	want := []string{img.Config.Digest.String(), img.Layers[0].Digest.String(), man.Digest.String()}
	slices.Sort(want)
	if got := rec.done(); !slices.Equal(got, want) {
		t.Errorf("progress finished %v, want the three blobs", got)
	}
}

// recorder is a progress.Tracker that remembers what finished without error.
type recorder struct {
	mu       sync.Mutex
	started  map[string]bool
	finished []string
}

func (r *recorder) Start(id, _ string, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started == nil {
		r.started = map[string]bool{}
	}
	r.started[id] = true
}

func (r *recorder) Add(string, int64) {}

func (r *recorder) Done(id string, _ bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && r.started[id] {
		r.finished = append(r.finished, id)
	}
}

func (r *recorder) done() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.finished)
	slices.Sort(out)
	return out
}

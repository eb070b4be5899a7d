package serve

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
	"github.com/bundle-dev/bundle/unpack"
)

// benchPulls is how many clients pull the whole set at once.
const benchPulls = 32

// BenchmarkPullsFromBundleVsDistribution is issue 15's performance check:
// 32 concurrent pulls of a bench set from `bundle serve FILE.tar.zst` (the
// binary, a process of its own) against the same pulls from Debian's
// docker-registry serving the set imported into it; the throughput ratio,
// serve's peak RSS and the time to first byte of the set's large layer.
// BUNDLE_SERVE_BENCH=SIZE (make bench-serve SIZE=2GiB) runs it.
func BenchmarkPullsFromBundleVsDistribution(b *testing.B) {
	spec := os.Getenv("BUNDLE_SERVE_BENCH")
	if spec == "" {
		b.Skip("set BUNDLE_SERVE_BENCH=SIZE (for example 2GiB) or run make bench-serve")
	}
	total, err := parseSize(spec)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dir := b.TempDir()
	file := filepath.Join(dir, "set.tar.zst")
	start := time.Now()
	set := writeBenchSet(b, file, total)
	b.Logf("bench set: %d images, %d MiB a pull, large layer %d MiB, written in %s", len(set.refs), set.bytes>>20, set.big.Size>>20, time.Since(start).Round(time.Second))

	dist := testregistry.StartProcess(b, testregistry.ProcessOptions{})
	if _, err := unpack.Import(ctx, file, unpack.Options{Target: dist.Host, Remote: remote.Options{PlainHTTP: true}}); err != nil {
		b.Fatalf("import into docker-registry: %v", err)
	}
	bin := filepath.Join(dir, "bundle")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/bundle-dev/bundle/cmd/bundle").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	srv := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--log-format", "json", file)
	stdout, err := srv.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	srv.Stderr = io.Discard // the access log is written, as in production, and not kept
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bundle serve printed no address: %v", err)
	}
	serveHost := strings.TrimSpace(line)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * benchPulls, DisableCompression: true}}

	ttfbServe := ttfb(b, client, serveHost, set)
	ttfbDist := ttfb(b, client, dist.Host, set)
	var serveTime, distTime time.Duration
	b.ResetTimer()
	for range b.N {
		distTime += pullAll(b, client, dist.Host, set)
		serveTime += pullAll(b, client, serveHost, set)
	}
	b.StopTimer()
	rss := vmHWM(b, srv.Process.Pid)
	moved := float64(b.N*benchPulls) * float64(set.bytes)
	serveRate, distRate := moved/serveTime.Seconds()/(1<<20), moved/distTime.Seconds()/(1<<20)
	b.ReportMetric(serveRate/distRate, "throughput-ratio")
	b.ReportMetric(serveRate, "serve-MiB/s")
	b.ReportMetric(distRate, "registry-MiB/s")
	b.ReportMetric(float64(rss)/(1<<20), "serve-peak-RSS-MiB")
	b.ReportMetric(float64(ttfbServe.Microseconds())/1000, "serve-TTFB-ms")
	b.ReportMetric(float64(ttfbDist.Microseconds())/1000, "registry-TTFB-ms")
}

// benchSet is what writeBenchSet wrote: the references to pull and the
// large layer.
type benchSet struct {
	refs  []string // repo:tag
	bytes int64    // of one pull of every image
	big   ocispec.Descriptor
	bigIn string // its repository
}

// writeBenchSet writes a seekable zstd bundle of about total bytes of
// random layers (as compressed layers are): one image with a large layer
// (1 GiB, or half the set when smaller) and images of four layers of
// assorted sizes for the rest.
func writeBenchSet(b *testing.B, file string, total int64) *benchSet {
	b.Helper()
	type blob struct {
		d    ocispec.Descriptor
		data []byte // nil for a layer: made again from seed
		seed uint64
	}
	var blobs []blob
	layer := func(seed uint64, size int64) ocispec.Descriptor {
		h := digest.SHA256.Digester()
		if _, err := io.Copy(h.Hash(), randomReader(seed, size)); err != nil {
			b.Fatal(err)
		}
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: h.Digest(), Size: size}
		blobs = append(blobs, blob{d: d, seed: seed})
		return d
	}
	doc := func(mt string, v any) ocispec.Descriptor {
		data, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
		blobs = append(blobs, blob{d: d, data: data})
		return d
	}
	set := &benchSet{}
	var entries []ocispec.Descriptor
	image := func(i int, layers []ocispec.Descriptor) {
		config := doc(ocispec.MediaTypeImageConfig, map[string]any{"architecture": "amd64", "os": "linux", "created": fmt.Sprint(i)})
		m := doc(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers})
		repo := fmt.Sprintf("bench/img%d", i)
		m.Annotations = map[string]string{graph.AnnotationImageName: "bench.example/" + repo + ":1", ocispec.AnnotationRefName: "bench.example/" + repo + ":1"}
		entries = append(entries, m)
		set.refs = append(set.refs, repo+":1")
		set.bytes += m.Size + config.Size
		for _, l := range layers {
			set.bytes += l.Size
		}
	}
	set.big = layer(1, min(1<<30, total/2))
	set.bigIn = "bench/img0"
	image(0, []ocispec.Descriptor{set.big})
	sizes := []int64{256 << 10, 4 << 20, 16 << 20, 40 << 20}
	seed := uint64(2)
	for i := 1; set.bytes < total; i++ {
		var layers []ocispec.Descriptor
		for _, s := range sizes {
			layers = append(layers, layer(seed, s))
			seed++
		}
		image(i, layers)
	}
	index, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: entries})
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := layout.NewWriter(f, layout.Zstd, layout.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.WriteMetadata(index); err != nil {
		b.Fatal(err)
	}
	for _, bl := range blobs {
		r, pre := io.Reader(nil), bl.data == nil
		if pre {
			r = randomReader(bl.seed, bl.d.Size)
		} else {
			r = strings.NewReader(string(bl.data))
		}
		if err := w.WriteEntry(layout.BlobPath(bl.d.Digest), bl.d.Size, r, pre); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return set
}

func randomReader(seed uint64, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// pullAll runs benchPulls clients at once, each pulling every image of
// the set (manifest, config, layers, read to the end), and returns the
// wall time.
func pullAll(b *testing.B, c *http.Client, host string, set *benchSet) time.Duration {
	b.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, benchPulls)
	for range benchPulls {
		wg.Go(func() {
			for _, ref := range set.refs {
				if err := pull(c, host, ref); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("pull from %s: %v", host, err)
	}
	return time.Since(start)
}

func pull(c *http.Client, host, ref string) error {
	repo, tag, _ := strings.Cut(ref, ":")
	req, err := http.NewRequest("GET", "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	data, err := fetch(c, req)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", ref, err)
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		req, err := http.NewRequest("GET", "http://"+host+"/v2/"+repo+"/blobs/"+d.Digest.String(), nil)
		if err != nil {
			return err
		}
		if _, err := fetchDiscard(c, req, d.Size); err != nil {
			return err
		}
	}
	return nil
}

func fetch(c *http.Client, req *http.Request) ([]byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func fetchDiscard(c *http.Client, req *http.Request, size int64) (int64, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n != size {
		err = fmt.Errorf("%s: %d bytes, want %d", req.URL.Path, n, size)
	}
	return n, err
}

// ttfb is the time from sending a GET of the large layer to its first
// byte, on a fresh connection.
func ttfb(b *testing.B, c *http.Client, host string, set *benchSet) time.Duration {
	b.Helper()
	c.CloseIdleConnections()
	start := time.Now()
	resp, err := c.Get("http://" + host + "/v2/" + set.bigIn + "/blobs/" + set.big.Digest.String())
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	// Read the rest: the connection then goes back to the pool whole.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatal(err)
	}
	return took
}

// vmHWM is the peak resident set of process pid.
func vmHWM(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}

// parseSize reads 2GiB, 512MiB or a byte count.
func parseSize(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v << u.shift, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

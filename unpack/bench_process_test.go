package unpack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/bench"
	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
)

// bigBundle is a bundle too large to hold in memory comfortably: its layers
// are generated while they are written and never kept.
type bigBundle struct {
	layers    []bigLayer
	manifests []bigManifest
	unique    int64 // bytes of all distinct blobs
}

type bigLayer struct {
	desc ocispec.Descriptor
	seed uint64
}

type bigManifest struct {
	desc ocispec.Descriptor
	ref  string
	raw  []byte
	cfg  []byte
}

// open generates the layer: ChaCha8 fills gigabytes a second, so the
// generator is never what a run waits for.
func (l bigLayer) open() io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(l.seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(key), l.desc.Size)
}

// newBigBundle describes 3 repositories of 6 layers each: 2 shared base
// layers of 32 MiB and 4 own layers of 16 MiB, 256 MiB of distinct
// incompressible gzip-typed layers in all.
func newBigBundle(t testing.TB) *bigBundle {
	bb := &bigBundle{}
	layer := func(seed uint64, size int64) ocispec.Descriptor {
		h := digest.SHA256.Digester()
		if _, err := io.Copy(h.Hash(), bigLayer{desc: ocispec.Descriptor{Size: size}, seed: seed}.open()); err != nil {
			t.Fatal(err)
		}
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: h.Digest(), Size: size}
		bb.layers = append(bb.layers, bigLayer{desc: d, seed: seed})
		bb.unique += size
		return d
	}
	base := []ocispec.Descriptor{layer(1, 32<<20), layer(2, 32<<20)}
	for r, repo := range []string{"a", "b", "c"} {
		ls := append([]ocispec.Descriptor(nil), base...)
		for i := range 4 {
			ls = append(ls, layer(uint64(100+10*r+i), 16<<20))
		}
		cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "repo": repo})
		cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
		raw, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: ls})
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
		bb.manifests = append(bb.manifests, bigManifest{desc: md, ref: "src:5000/big/" + repo + ":1.0", raw: raw, cfg: cfg})
		bb.unique += int64(len(cfg))
	}
	return bb
}

// write streams the bundle into a file of the given compression.
func (bb *bigBundle) write(t testing.TB, path string, c layout.Compression) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := layout.NewWriter(bw, c, layout.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string, size int64, r io.Reader, pre bool) {
		if err := w.WriteEntry(name, size, r, pre); err != nil {
			t.Fatal(err)
		}
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, m := range bb.manifests {
		d := m.desc
		d.Annotations = map[string]string{ocispec.AnnotationRefName: m.ref, graph.AnnotationImageName: m.ref}
		idx.Manifests = append(idx.Manifests, d)
	}
	idxRaw, _ := json.Marshal(idx)
	put(layout.LayoutFile, int64(len(layout.LayoutBytes())), bytes.NewReader(layout.LayoutBytes()), false)
	put(layout.IndexFile, int64(len(idxRaw)), bytes.NewReader(idxRaw), false)
	for _, m := range bb.manifests {
		put(layout.BlobPath(m.desc.Digest), m.desc.Size, bytes.NewReader(m.raw), false)
	}
	for _, m := range bb.manifests {
		put(layout.BlobPath(digest.FromBytes(m.cfg)), int64(len(m.cfg)), bytes.NewReader(m.cfg), false)
	}
	for _, l := range bb.layers {
		put(layout.BlobPath(l.desc.Digest), l.desc.Size, l.open(), true)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}

// peakRSS resets the kernel's high-water mark of this process's resident
// memory (clear_refs 5) and returns a func that reads it in MiB.
func peakRSS() func() float64 {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return func() float64 {
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				return kb / 1024
			}
		}
		return 0
	}
}

// BenchmarkImportProcess imports 256 MiB of distinct layers across 3
// repositories into Debian's docker-registry (a separate process), beside
// a baseline that uploads the same distinct blobs on one stream with a
// bare POST + PUT ?digest=: the ratio of their ns/op is the goal of issue 6.
func BenchmarkImportProcess(b *testing.B) {
	if _, err := os.Stat(testregistry.RegistryBinary); err != nil {
		b.Skipf("%s not installed", testregistry.RegistryBinary)
	}
	bb := newBigBundle(b)
	dir := b.TempDir()
	files := map[string]string{}
	for name, c := range map[string]layout.Compression{"tar": layout.None, "zst": layout.Zstd} {
		files[name] = filepath.Join(dir, "b."+name)
		bb.write(b, files[name], c)
	}

	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(bb.unique)
		l, closer, err := layout.OpenPath(files["tar"])
		if err != nil {
			b.Fatal(err)
		}
		defer closer.Close()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			reg := testregistry.StartProcess(b, testregistry.ProcessOptions{})
			c := bench.NewClient(reg.Host)
			b.StartTimer()
			if err := uploadUnique(b.Context(), c, l); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(bb.unique), "bytes-uploaded/op")
	})

	for _, name := range []string{"tar", "zst", "dir"} {
		for _, full := range []bool{false, true} {
			if name == "dir" && full {
				continue
			}
			b.Run(name+map[bool]string{false: "/empty", true: "/full"}[full], func(b *testing.B) {
				file := files[name]
				if name == "dir" {
					file = unpackDir(b, files["tar"])
				}
				benchImportProcess(b, bb, file, full)
			})
		}
	}
}

func benchImportProcess(b *testing.B, bb *bigBundle, file string, full bool) {
	b.SetBytes(bb.unique)
	var reg *testregistry.Process
	if full {
		reg = testregistry.StartProcess(b, testregistry.ProcessOptions{})
		if _, err, _ := importTo(b, b.Context(), file, reg.Host, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var uploaded int64
	var peak float64
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if !full {
			reg = testregistry.StartProcess(b, testregistry.ProcessOptions{})
		}
		rss := peakRSS()
		b.StartTimer()
		cpu0 := cpuTime()
		rep, err, _ := importTo(b, b.Context(), file, reg.Host, func(o *Options) { o.Concurrency = 0 })
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - cpu0
		uploaded += rep.BytesUploaded
		peak = max(peak, rss())
		b.StartTimer()
	}
	b.ReportMetric(float64(uploaded)/float64(b.N), "bytes-uploaded/op")
	b.ReportMetric(peak, "peak-RSS-MiB")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU this process (not the registry) has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// uploadUnique sends every blob of l once, one after the other, into one
// repository, without verifying: the floor an import is measured against.
func uploadUnique(ctx context.Context, c *bench.Client, l layout.Layout) error {
	for _, e := range l.Entries() {
		d, err := layout.ParseBlobPath(e.Name)
		if err != nil {
			continue
		}
		rc, err := l.Open(e.Name)
		if err != nil {
			return err
		}
		err = c.UploadBlob(ctx, "floor", ocispec.Descriptor{Digest: d, Size: e.Size}, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
	}
	return nil
}

// unpackDir extracts a plain tar bundle into a layout directory.
func unpackDir(t testing.TB, tarFile string) string {
	l, closer, err := layout.OpenPath(tarFile)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	dir := t.TempDir()
	for _, e := range l.Entries() {
		p := filepath.Join(dir, filepath.FromSlash(e.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := l.Open(e.Name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(f, rc)
		rc.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

package pack

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/bundle-dev/bundle/internal/bench"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
)

// BenchmarkExportAgainstFloor exports every tag of a ~256 MiB data set (mostly gzip
// layers, with indexes and referrer trees) from a docker-registry process.
// The baseline sub-benchmark is the floor the export is held against: GET
// every blob once on four streams, hash it, write it to one file. Compare
// ns/op of the others with it.
func BenchmarkExportAgainstFloor(b *testing.B) {
	reg := testregistry.StartProcess(b, testregistry.ProcessOptions{})
	ctx := context.Background()
	plan, err := bench.NewPlan(256<<20, 1)
	if err != nil {
		b.Fatal(err)
	}
	ds, err := bench.Build(ctx, plan)
	if err != nil {
		b.Fatal(err)
	}
	if err := bench.Push(ctx, bench.NewClient(reg.Host), ds); err != nil {
		b.Fatalf("pushing the data set: %v", err)
	}
	refs := make([]string, 0, len(ds.Refs))
	for _, r := range ds.Refs {
		refs = append(refs, reg.Host+"/"+r)
	}

	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(ds.UniqueBytes)
		for b.Loop() {
			if err := getHashWrite(ctx, reg.Host, ds, filepath.Join(b.TempDir(), "all")); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, comp := range []layout.Compression{layout.None, layout.Zstd} {
		b.Run("export-"+string(comp), func(b *testing.B) {
			b.SetBytes(ds.UniqueBytes)
			for b.Loop() {
				opts := testOptions(b, "b.tar")
				opts.Compression = comp
				if _, err := Export(ctx, refs, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// getHashWrite is the floor: every blob and manifest read once from the
// registry, hashed once and written once, four at a time, into one file.
func getHashWrite(ctx context.Context, host string, ds *bench.DataSet, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	items := append(append([]bench.Item(nil), ds.Blobs...), ds.Manifests...)
	manifests := len(ds.Blobs) // items from here on are manifests
	offs := make([]int64, len(items))
	for i, it := range items {
		offs[i] = off
		off += it.Desc.Size
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, it := range items {
		g.Go(func() error {
			kind := "blobs"
			if i >= manifests {
				kind = "manifests"
			}
			url := fmt.Sprintf("http://%s/v2/%s/%s/%s", host, it.Repo, kind, it.Desc.Digest)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			req.Header.Set("Accept", it.Desc.MediaType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			h := sha256.New()
			w := io.NewOffsetWriter(f, offs[i])
			if _, err := io.CopyBuffer(io.MultiWriter(h, w), resp.Body, make([]byte, 1<<20)); err != nil {
				return err
			}
			if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != it.Desc.Digest.String() {
				return fmt.Errorf("GET %s: digest %s", url, got)
			}
			return nil
		})
	}
	return g.Wait()
}

package pack

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bundle-dev/bundle/internal/bench"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
)

// BenchmarkExportAgainstFloor exports every tag of a ~256 MiB data set (mostly gzip
// layers, with indexes and referrer trees) from a docker-registry process.
// The baseline sub-benchmark is the floor the export is held against, the
// same as make bench's: GET every blob once, hash it, write it to one file.
// Compare ns/op of the others with it.
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
			if err := bench.GetHashWrite(ctx, bench.NewClient(reg.Host), ds, filepath.Join(b.TempDir(), "all")); err != nil {
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

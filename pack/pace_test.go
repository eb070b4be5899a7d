package pack

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/plugins/content/local"

	"github.com/bundle-dev/bundle/internal/testregistry"
)

func TestGaugeStarvesOnlyWhenTheWriterWaitsOnASlowStream(t *testing.T) {
	ms := time.Millisecond
	type span struct {
		busy, waiting time.Duration
		bytes         int
	}
	for _, c := range []struct {
		name  string
		spans []span
		want  bool
	}{
		{"disk bound", []span{{80 * ms, 30 * ms, 1 << 20}}, false},
		{"slow network", []span{{20 * ms, 90 * ms, 1 << 20}}, true},
		{"waiting on a fast stream (CPU bound)", []span{{10 * ms, 95 * ms, 64 << 20}}, false},
		{"short window, no verdict", []span{{1 * ms, 50 * ms, 1 << 10}}, false},
		{"even split", []span{{50 * ms, 50 * ms, 1 << 10}}, false},
		{"starved, then the disk is the limit", []span{{5 * ms, 100 * ms, 1 << 10}, {150 * ms, 10 * ms, 1 << 10}}, false},
		{"starved over several reads", []span{{5 * ms, 40 * ms, 1 << 10}, {5 * ms, 40 * ms, 1 << 10}, {5 * ms, 40 * ms, 1 << 10}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := time.Unix(0, 0)
			p := newPacer()
			g := newGauge(p, func() time.Time { return clock })
			for _, s := range c.spans {
				clock = clock.Add(s.busy)
				g.wait()
				clock = clock.Add(s.waiting)
				g.done(s.bytes)
			}
			if p.starved != c.want {
				t.Errorf("starved = %v, want %v", p.starved, c.want)
			}
		})
	}
}

func TestPacerReleasesWaitersWhenStarvedOrDone(t *testing.T) {
	p := newPacer()
	ctx := context.Background()
	got := make(chan bool)
	go func() {
		done, err := p.wait(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- done
	}()
	p.set(false) // no change: the waiter stays
	p.set(true)
	if done := <-got; done {
		t.Error("wait reported done when the writer was only starved")
	}

	p.set(false)
	go func() {
		done, _ := p.wait(ctx)
		got <- done
	}()
	p.finish()
	if done := <-got; !done {
		t.Error("wait did not report the writer done")
	}

	p2 := newPacer()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p2.wait(cctx); err == nil {
		t.Error("wait on a cancelled context returned no error")
	}
}

// Over a slow link the writer waits on its one stream: the prefetchers must
// then fetch large blobs side by side into the cache, and what the writer
// streams itself is kept there too, for the next export over that link.
func TestExportFetchesAheadOverASlowLink(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "slow", "1", testregistry.ImageSpec{Seed: 12, Layers: 6, LayerSize: 3 << 19})
	proxy := testregistry.NewProxy(t, r, testregistry.Faults{BlobRate: 8 << 20})
	opts := testOptions(t, "slow.tar")
	opts.Concurrency = 2 // one prefetcher from the end, the writer from the front
	if _, err := Export(context.Background(), []string{proxy.Ref("slow", "1")}, opts); err != nil {
		t.Fatalf("Export: %v", err)
	}
	wantBlobs(t, readArchive(t, opts.Output), imageDescs(img)...)

	store, err := local.NewStore(opts.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	cached := 0
	for _, l := range img.Layers {
		if _, err := store.Info(context.Background(), l.Digest); err == nil {
			cached++
		}
	}
	// The first layer starts before the writer is known to be starved.
	if cached < len(img.Layers)-1 {
		t.Errorf("%d of %d layers in the cache after an export over an 8 MB/s link, want all but the first", cached, len(img.Layers))
	}

	opts.Force = true // the same output again
	rep, err := Export(context.Background(), []string{proxy.Ref("slow", "1")}, opts)
	if err != nil {
		t.Fatalf("second Export: %v", err)
	}
	// At most the first layer, the small blobs the writer took before the
	// verdict, and the manifest, which planning reads again, come over the
	// link again.
	if limit := img.Layers[0].Size + img.Config.Size + img.Desc.Size; rep.BytesFetched > limit {
		t.Errorf("the second export over the slow link fetched %d bytes, want at most %d", rep.BytesFetched, limit)
	}
}

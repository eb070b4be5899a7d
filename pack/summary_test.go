package pack

import (
	"context"
	"os"
	"testing"

	"github.com/bundle-dev/bundle/internal/testregistry"
)

func TestDryRunPrintsThePlanAndFetchesNoLayer(t *testing.T) {
	r := testregistry.NewDistribution(t)
	a := r.PushImage(t, "team/a", "1", testregistry.ImageSpec{Seed: 1, Layers: 3, LayerSize: 64 << 10})
	r.PushImage(t, "team/b", "1", testregistry.ImageSpec{Seed: 2, Shared: a.Layers[:2]})
	r.PushReferrer(t, "team/a", a.Desc, "application/vnd.example.sig", nil)
	refs := []string{r.Ref("team/a", "1"), r.Ref("team/b", "1")}

	opts := testOptions(t, "b.tar")
	opts.DryRun = true
	r.ResetCounts()
	dry, err := Export(context.Background(), refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Single-platform images have their config read while planning, for
	// their platform; no layer is fetched.
	if n := r.Count("GET", "blob"); n > 2 {
		t.Errorf("the dry run made %d blob GETs, want at most the 2 configs", n)
	}
	if _, err := os.Stat(opts.Output); !os.IsNotExist(err) {
		t.Errorf("the dry run wrote %s (%v)", opts.Output, err)
	}
	p := dry.Plan
	if !dry.DryRun || len(p.Images) != 2 || p.Referrers != 1 || p.Platforms != 1 {
		t.Errorf("plan %+v", p)
	}
	if p.BytesToFetch+p.BytesCached > p.BytesTotal || p.BytesToFetch == 0 {
		t.Errorf("plan bytes: total %d, to fetch %d, cached %d", p.BytesTotal, p.BytesToFetch, p.BytesCached)
	}

	opts.DryRun = false
	var first *PlanReport
	opts.OnPlan = func(p *PlanReport) { first = p }
	real, err := Export(context.Background(), refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if first == nil || first.Blobs != p.Blobs || first.BytesTotal != p.BytesTotal || first.Manifests != p.Manifests {
		t.Errorf("the export's plan %+v differs from the dry run's %+v", first, p)
	}
	if real.Blobs != p.Blobs || real.BytesTotal != p.BytesTotal || real.Manifests != p.Manifests {
		t.Errorf("the export wrote %d blobs (%d manifests, %d bytes), the plan said %d (%d, %d)", real.Blobs, real.Manifests, real.BytesTotal, p.Blobs, p.Manifests, p.BytesTotal)
	}
}

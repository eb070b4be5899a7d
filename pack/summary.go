package pack

import (
	"context"
)

// PlanReport is the plan in numbers, before any blob is fetched: what
// --dry-run prints, and what a real export prints first.
type PlanReport struct {
	Images       []ImageReport `json:"images"`
	Selections   []Selection   `json:"selections,omitempty"`
	Platforms    int           `json:"platforms"`
	Referrers    int           `json:"referrers"`
	Blobs        int           `json:"blobs"`        // entries under blobs/, manifests included
	Manifests    int           `json:"manifests"`    // of which manifests and indexes
	BytesTotal   int64         `json:"bytesTotal"`   // unique content the bundle will hold
	BytesToFetch int64         `json:"bytesToFetch"` // of which still to fetch from registries
	BytesCached  int64         `json:"bytesCached"`  // of which the cache holds already
	// Bases name the bundles (the digests of their index.json) whose blobs
	// --since leaves out; LeftOut and BytesLeftOut are what that saves.
	Bases        []string `json:"bases,omitempty"`
	LeftOut      int      `json:"leftOut"`
	BytesLeftOut int64    `json:"bytesLeftOut"`
}

// summarize counts the plan. Manifests read while planning are held in
// memory for the writer: fetched already, they count as neither.
func summarize(ctx context.Context, src *source, p *Plan, cut *leftOut) PlanReport {
	r := PlanReport{Selections: p.Selections, Referrers: len(uniqueReferrers(p)), Blobs: len(p.Nodes), BytesTotal: p.Size()}
	r.Images, r.Platforms = imageReports(p)
	for _, n := range p.Nodes {
		if n.IsManifest() {
			r.Manifests++
		}
		switch {
		case src.cached(ctx, n.Desc.Digest):
			r.BytesCached += n.Desc.Size
		case !src.isPlanned(n.Desc.Digest):
			r.BytesToFetch += n.Desc.Size
		}
	}
	if cut != nil {
		r.Bases = cut.bases
		r.LeftOut = len(cut.blobs)
		r.BytesLeftOut = cut.bytes
	}
	return r
}

// Package pack exports images and their referrer trees from registries into
// one OCI-layout archive: plan, fetch into a verified cache, write.
package pack

import (
	"time"

	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/sign"
	"github.com/bundle-dev/bundle/internal/spec"
	"github.com/bundle-dev/bundle/layout"
)

// Options for Export.
type Options struct {
	Output        string             // archive path; FILE.partial while writing, FILE.sha256 after
	Compression   layout.Compression // "" means by Output's extension
	Platforms     []string           // OS/ARCH[/VARIANT]; empty means all
	NoReferrers   bool
	ArtifactTypes []string // keep only referrers of these types; empty means all
	// AllowEmpty turns "the filters keep nothing of this image" from an
	// error into a notice.
	AllowEmpty  bool
	Force       bool   // replace an existing Output
	Concurrency int    // default 8
	CacheDir    string // content cache; "" means <user cache dir>/bundle/content
	Remote      remote.Options
	Progress    progress.Tracker // nil means progress.Discard
	// Notice receives human notices (skipped foreign layers, warnings); may be nil.
	Notice func(format string, args ...any)
	// SplitSize > 0 writes Output as parts Output.000, Output.001, … of
	// this many bytes, listed in Output.sha256.
	SplitSize int64
	Parity    int // parity parts Output.p000, …; needs SplitSize
	// SignKey is a private key (cosign's, or PKCS#8 PEM): Output.sha256 is
	// signed into Output.sha256.sig. KeyPassword is asked for an
	// encrypted one.
	SignKey     string
	KeyPassword sign.PassFunc

	// Images are the entries of spec files, exported beside the references
	// given; each entry's options override the ones above.
	Images []spec.Image
	// DryRun stops after the plan: Report.Plan says what the export would
	// do, and no blob is fetched.
	DryRun bool
	// Since are earlier bundles or receipts: the blobs they hold are left
	// out (manifests always travel), and index.json names them.
	Since []string
	// OnPlan, when set, is given the plan's numbers before the transfer.
	OnPlan func(*PlanReport)
}

// Report is what Export did; cmd/bundle prints it as text or JSON.
type Report struct {
	Output       string        `json:"output"`
	SHA256       string        `json:"sha256"`
	Compression  string        `json:"compression"`
	Images       []ImageReport `json:"images"`
	Platforms    int           `json:"platforms"` // distinct platforms kept across images
	Referrers    int           `json:"referrers"`
	Blobs        int           `json:"blobs"`        // entries under blobs/, manifests included
	Manifests    int           `json:"manifests"`    // of which manifests and indexes
	BytesFetched int64         `json:"bytesFetched"` // from registries in this run
	BytesCached  int64         `json:"bytesCached"`  // reused from the cache
	BytesTotal   int64         `json:"bytesTotal"`   // unique content in the archive
	BytesDeduped int64         `json:"bytesDeduped"` // saved by storing shared blobs once
	ArchiveSize  int64         `json:"archiveSize"`
	Skipped      []string      `json:"skippedForeignLayers,omitempty"`
	Parts        []string      `json:"parts,omitempty"`     // data parts then parity parts, when split
	Signature    string        `json:"signature,omitempty"` // the .sig file written
	Duration     time.Duration `json:"durationNs"`
	// Planning is how long the plan took; FirstWrite when the first blob
	// reached the disk (the spool, while planning went on, or the archive).
	Planning   time.Duration `json:"planningNs"`
	FirstWrite time.Duration `json:"firstWriteNs"`
	DryRun     bool          `json:"dryRun,omitempty"`
	Plan       PlanReport    `json:"plan"`
}

// ImageReport describes one exported reference.
type ImageReport struct {
	Reference string   `json:"reference"`
	Digest    string   `json:"digest"`
	MediaType string   `json:"mediaType"`
	Platforms []string `json:"platforms,omitempty"`
	Referrers int      `json:"referrers"`
}

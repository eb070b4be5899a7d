// Package unpack imports an OCI-layout archive into a registry: rebuild the
// graph, verify, and push in dependency order with repository mapping.
package unpack

import (
	"io"
	"time"

	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/remote"
)

// Options for Import.
type Options struct {
	Target        string // HOST[:PORT][/PREFIX]
	ReferrersMode string // auto (default), api, tag
	SparseIndex   string // "" (refuse clearly), single, rewrite
	DryRun        bool
	Concurrency   int // default 8
	Remote        remote.Options
	Progress      progress.Tracker // nil means progress.Discard
	Stdin         io.Reader        // read when the file is "-"
	Notice        func(format string, args ...any)

	// Key is a public key: the bundle's FILE.sha256.sig must verify with
	// it, and the bundle match FILE.sha256, before anything is pushed.
	Key string
	// Receipt, when set, is where a successful import writes what the
	// target now holds of the bundle (verify.Receipt): the base of the
	// next incremental export.
	Receipt string
}

// Report is what Import did.
type Report struct {
	Target        string        `json:"target"`
	ReferrersMode string        `json:"referrersMode"`
	DryRun        bool          `json:"dryRun"`
	Images        []ImageReport `json:"images"`
	Tags          int           `json:"tags"`
	Referrers     int           `json:"referrers"`
	Uploaded      int           `json:"blobsUploaded"`
	Skipped       int           `json:"blobsSkipped"`
	Mounted       int           `json:"blobsMounted"`
	BytesUploaded int64         `json:"bytesUploaded"`
	Failed        []string      `json:"failed,omitempty"`
	Duration      time.Duration `json:"durationNs"`
}

// ImageReport is one image as it lands on the target.
type ImageReport struct {
	Source    string `json:"source"`
	Target    string `json:"target"`
	Digest    string `json:"digest"`
	State     string `json:"state"` // StatePush, StatePushed, StateThere, StateRefused, StateFailed
	Pushed    bool   `json:"pushed"`
	Error     string `json:"error,omitempty"`
	Referrers int    `json:"referrers"`
}

package verify

import (
	"context"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/layout"
)

// Inventory is what a bundle holds, for `bundle inspect`.
type Inventory struct {
	File        string  `json:"file"`
	Compression string  `json:"compression"`
	Seekable    bool    `json:"seekable"`
	ArchiveSize int64   `json:"archiveSize"`
	BytesRead   int64   `json:"bytesRead"` // of the archive, to build this inventory
	Images      []*Node `json:"images,omitempty"`
	Blobs       int     `json:"blobs"`
	Bytes       int64   `json:"bytes"`
	SharedBytes int64   `json:"sharedBytes"` // bytes of blobs reached from more than one image
	// Truncated says the bundle was too large to show whole: later
	// repeats are listed without their trees and sharedBytes is a floor.
	Truncated bool `json:"truncated,omitempty"`
	// WrittenByBundle says index.json was checked against the digest
	// bundle recorded in oci-layout.
	WrittenByBundle bool `json:"writtenByBundle"`
	// Parts is how a bundle carried in parts is cut, and each part's state.
	Parts *parts.Status `json:"parts,omitempty"`
	// Signature is SignatureUnchecked when FILE.sha256.sig is there
	// (inspect checks no key), else SignatureNone.
	Signature string `json:"signature"`
	// Bundle is the digest of index.json: the identity an incremental
	// bundle names its base by. Base is set for an incremental bundle.
	Bundle string       `json:"bundle,omitempty"`
	Base   *Incremental `json:"base,omitempty"`

	receipt    *Receipt
	receiptErr error
}

// Receipt describes the bundle as a base for `bundle export --since`.
func (inv *Inventory) Receipt() (*Receipt, error) { return inv.receipt, inv.receiptErr }

// Node is an image, a platform of an index, or a referrer.
type Node struct {
	Reference    string            `json:"reference,omitempty"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     string            `json:"platform,omitempty"`
	Size         int64             `json:"size"` // the manifest and what it needs
	Annotations  map[string]string `json:"annotations,omitempty"`
	// ShownAbove marks a manifest met before in the inventory: its tree
	// is listed where it first appears.
	ShownAbove bool    `json:"shownAbove,omitempty"`
	Children   []*Node `json:"children,omitempty"` // platforms
	Referrers  []*Node `json:"referrers,omitempty"`
}

// Inspect lists the images and referrers of the bundle at path ("-" for
// opts.Stdin). It opens the bundle as import does: a seekable archive or a
// directory is read only for its metadata; a stream is read once, front to
// back, and every blob in it is checked against its digest on the way.
func Inspect(ctx context.Context, path string, opts Options) (*Inventory, error) {
	opts.partSizesOnly = true
	b, err := Open(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: run bundle verify on it", err)
	}
	defer b.Close()
	if !b.Random {
		buf := make([]byte, copyBufSize)
		err := b.Blobs(ctx, func(e layout.Entry, d digest.Digest, r io.Reader) error {
			if _, err := io.CopyBuffer(io.Discard, NewReader(r, ocispec.Descriptor{Digest: d, Size: e.Size}), buf); err != nil {
				return fmt.Errorf("bundle %s: %s: %w", path, e.Name, err)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: run bundle verify on it", err)
		}
	}
	// What verify would refuse in the graph, inspect refuses too: the
	// same bundle gets the same verdict.
	rep := &Report{}
	checkGraph(b, nil, rep)
	for _, p := range rep.Problems {
		if p.Severity == SeverityError {
			return nil, fmt.Errorf("bundle %s: %s: run bundle verify on it", path, p.Message)
		}
	}
	inv := &Inventory{File: path, Compression: string(b.Compression), Seekable: b.Random && !b.Spooled, ArchiveSize: b.Size,
		BytesRead: b.BytesRead(), WrittenByBundle: b.Written()}
	for _, n := range b.Present {
		inv.Blobs++
		inv.Bytes += n
	}
	switch {
	case b.Size >= 0:
	case b.Random && !b.Spooled: // a directory: its blobs are its size
		inv.ArchiveSize = inv.Bytes
	default: // standard input
		inv.ArchiveSize = b.BytesRead()
	}
	inv.Parts, inv.Signature = mediaOf(b, path)
	if inv.Parts != nil {
		inv.File = inv.Parts.Base
	}
	if b.Written() {
		inv.Bundle = b.Info.IndexDigest.String()
	}
	inv.Base = b.Incremental()
	inv.receipt, inv.receiptErr = ReceiptOf(b)
	newTree(b).build(inv)
	return inv, nil
}

package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
}

// Node is an image, a platform of an index, or a referrer.
type Node struct {
	Reference    string            `json:"reference,omitempty"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     string            `json:"platform,omitempty"`
	Size         int64             `json:"size"` // the manifest and everything it needs
	Annotations  map[string]string `json:"annotations,omitempty"`
	Children     []*Node           `json:"children,omitempty"` // platforms
	Referrers    []*Node           `json:"referrers,omitempty"`
}

// contents is the part of a layout that inspect needs: the index, the
// manifests, and the size of every blob.
type contents struct {
	index     *graph.Manifest
	manifests map[digest.Digest]*graph.Manifest
	sizes     map[digest.Digest]int64
}

// Inspect lists the images and referrers of the bundle at path ("-" for
// opts.Stdin). A seekable archive or a directory is read only for
// index.json and the manifests; other archives are read once, front to back.
func Inspect(ctx context.Context, path string, opts Options) (*Inventory, error) {
	inv := &Inventory{File: path}
	var c *contents
	var err error
	if path == "-" {
		c, err = inspectStream(ctx, inv, path, opts)
	} else {
		c, err = inspectSeekable(ctx, inv, path)
		if errors.Is(err, layout.ErrNotSeekable) {
			c, err = inspectStream(ctx, inv, path, opts)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, n := range c.sizes {
		inv.Blobs++
		inv.Bytes += n
	}
	if inv.ArchiveSize == 0 { // a directory: its blobs are its size
		inv.ArchiveSize = inv.Bytes
	}
	newTree(c).build(inv)
	return inv, nil
}

// bytesReader is what layout.Archive offers to say how much it read.
type bytesReader interface{ BytesRead() int64 }

func inspectSeekable(ctx context.Context, inv *Inventory, path string) (*contents, error) {
	l, closer, err := layout.OpenPath(path)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer closer.Close()
	inv.Seekable = true
	inv.Compression = string(layout.None)
	if a, ok := l.(interface{ Compression() layout.Compression }); ok {
		inv.Compression = string(a.Compression())
	}
	c := &contents{manifests: map[digest.Digest]*graph.Manifest{}, sizes: map[digest.Digest]int64{}}
	hasIndex := false
	for _, e := range l.Entries() {
		if e.Name == layout.IndexFile {
			hasIndex = true
		}
		if d, err := layout.ParseBlobPath(e.Name); err == nil {
			c.sizes[d] = e.Size
		}
	}
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		inv.ArchiveSize = fi.Size()
	}
	ld := &loader{l: l, c: c}
	if !hasIndex {
		return nil, fmt.Errorf("inspect %s: no index.json: this is not a complete OCI layout; run bundle verify on it", path)
	}
	data, err := ld.read(layout.IndexFile)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	if c.index, err = parseIndex(data); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	if err := ld.loadAll(ctx, c.index.Manifests); err != nil {
		return nil, fmt.Errorf("inspect %s: %w: run bundle verify on it", path, err)
	}
	inv.BytesRead = ld.n
	if br, ok := l.(bytesReader); ok {
		inv.BytesRead = br.BytesRead()
	}
	return c, nil
}

// loader reads manifests from a layout, following manifest descriptors only.
type loader struct {
	l layout.Layout
	c *contents
	n int64 // bytes read, for layouts that do not count
}

func (ld *loader) read(name string) ([]byte, error) {
	rc, err := ld.l.Open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := graph.ReadAll(rc)
	ld.n += int64(len(data))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

func (ld *loader) loadAll(ctx context.Context, descs []ocispec.Descriptor) error {
	queue := append([]ocispec.Descriptor(nil), descs...)
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := queue[0]
		queue = queue[1:]
		if _, done := ld.c.manifests[d.Digest]; done || !graph.IsManifest(d.MediaType) {
			continue
		}
		if _, ok := ld.c.sizes[d.Digest]; !ok {
			continue // left out (sparse index) or missing: verify's business
		}
		m, err := ld.manifest(d)
		if err != nil {
			return err
		}
		ld.c.manifests[d.Digest] = m
		queue = append(queue, m.Manifests...)
		if m.Subject != nil {
			queue = append(queue, *m.Subject)
		}
	}
	return nil
}

func (ld *loader) manifest(d ocispec.Descriptor) (*graph.Manifest, error) {
	name := layout.BlobPath(d.Digest)
	rc, err := ld.l.Open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := graph.ReadAll(NewReader(rc, d))
	ld.n += int64(len(data))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	m, err := graph.Parse(d.MediaType, data)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	return m, nil
}

func inspectStream(ctx context.Context, inv *Inventory, path string, opts Options) (*contents, error) {
	in, closeIn, err := openInput(path, opts)
	if err != nil {
		return nil, err
	}
	defer closeIn()
	lr, err := layout.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	s := newScan()
	if err := s.run(ctx, lr); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	if !s.complete {
		return nil, fmt.Errorf("inspect %s: %s: run bundle verify on it", path, s.problems[len(s.problems)-1].Message)
	}
	if s.index == nil {
		return nil, fmt.Errorf("inspect %s: no valid index.json: run bundle verify on it", path)
	}
	inv.Compression = s.comp
	inv.BytesRead = lr.Offset()
	inv.ArchiveSize = lr.Offset()
	if fi, err := os.Stat(path); path != "-" && err == nil {
		inv.ArchiveSize = fi.Size()
	}
	return &contents{index: s.index, manifests: s.manifests, sizes: s.sizes}, nil
}

// cosignSuffixes are the tag suffixes of cosign's older scheme: the tag
// <alg>-<hex>.sig names the subject by digest.
var cosignSuffixes = []string{".sig", ".att", ".sbom"}

// cosignSubject returns the subject a cosign tag points at.
func cosignSubject(ref string) (digest.Digest, bool) {
	tag := ref[strings.LastIndexAny(ref, ":/")+1:]
	for _, suf := range cosignSuffixes {
		base, ok := strings.CutSuffix(tag, suf)
		if !ok {
			continue
		}
		alg, enc, ok := strings.Cut(base, "-")
		if !ok {
			return "", false
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
		return d, d.Validate() == nil
	}
	return "", false
}

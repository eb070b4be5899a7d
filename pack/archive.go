package pack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/layout"
)

// Annotations index.json carries for each exported image.
const (
	annotationContainerdName = "io.containerd.image.name"
)

// openFunc hands the archive writer blob i of the write order, whose bytes
// are checked against its digest on the way; it may block until a fetcher
// has it.
type openFunc func(ctx context.Context, i int, n *Node) (io.ReadCloser, error)

type archiveResult struct {
	sha256    string
	size      int64
	parts     []string // when split
	signature string   // the .sig written, if any
}

// writeArchive writes the archive as m says, one file or parts, then signs
// its checksum file if m has a key. Salvage is for one file only.
func writeArchive(ctx context.Context, m *media, out string, comp layout.Compression, index []byte, blobs []*Node, open openFunc, salvage func(partial string)) (res archiveResult, err error) {
	if m.split > 0 {
		res, err = m.writeParts(ctx, out, comp, index, blobs, open)
	} else {
		res, err = writeFile(ctx, out, comp, index, blobs, open, salvage)
	}
	if err != nil {
		return res, err
	}
	if res.signature, err = m.sign(out); err != nil {
		return res, err
	}
	return res, nil
}

// writeFile writes the layout to out.partial, syncs it, renames it to
// out and writes out.sha256. On any failure nothing is left under either
// name; salvage, if set, is given out.partial first.
func writeFile(ctx context.Context, out string, comp layout.Compression, index []byte, blobs []*Node, open openFunc, salvage func(partial string)) (res archiveResult, err error) {
	partial := out + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return res, fmt.Errorf("creating %s: %w: check that its directory exists and is writable", partial, err)
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			if salvage != nil {
				salvage(partial)
			}
			os.Remove(partial)
		}
	}()

	h := sha256.New()
	sink := newAsyncSink(f, h)
	err = writeLayout(ctx, sink, comp, index, blobs, open)
	if cerr := sink.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing %s: %w: check the space left on its disk", partial, cerr)
	}
	if err != nil {
		return res, err
	}
	if err = f.Sync(); err != nil {
		return res, fmt.Errorf("syncing %s: %w", partial, err)
	}
	closed = true
	if err = f.Close(); err != nil {
		return res, fmt.Errorf("closing %s: %w", partial, err)
	}
	if err = os.Rename(partial, out); err != nil {
		return res, fmt.Errorf("renaming %s to %s: %w", partial, out, err)
	}
	res = archiveResult{sha256: hex.EncodeToString(h.Sum(nil)), size: sink.n}
	if err = writeSidecar(out, res.sha256); err != nil {
		// An archive without its checksum would look complete; it is not.
		os.Remove(out)
		return res, err
	}
	syncDir(filepath.Dir(out))
	return res, nil
}

func writeLayout(ctx context.Context, w io.Writer, comp layout.Compression, index []byte, blobs []*Node, open openFunc) (err error) {
	lw, err := layout.NewWriter(w, comp, layout.WriterOptions{})
	if err != nil {
		return fmt.Errorf("starting the %s archive: %w", comp, err)
	}
	defer func() {
		if err != nil {
			// Close after a failure writes out what was whole (the frames
			// in flight) and stops the compressors, for salvage to read.
			_ = lw.Close()
		}
	}()
	if err := lw.WriteMetadata(index); err != nil {
		return fmt.Errorf("writing the archive's metadata: %w", err)
	}
	for i, n := range blobs {
		if err := writeBlob(ctx, lw, i, n, open); err != nil {
			return err
		}
	}
	if err := lw.Close(); err != nil {
		return fmt.Errorf("finishing the archive: %w", err)
	}
	return nil
}

func writeBlob(ctx context.Context, lw *layout.Writer, i int, n *Node, open openFunc) error {
	rc, err := open(ctx, i, n)
	if err != nil {
		return err
	}
	defer rc.Close()
	err = lw.WriteEntry(layout.BlobPath(n.Desc.Digest), n.Desc.Size, rc, graph.IsCompressedLayer(n.Desc.MediaType))
	if fetch := asFetchFailure(err); fetch != nil {
		// The registry failed, not the archive: that message says it all.
		return fetch
	}
	if err != nil {
		return fmt.Errorf("writing %s %s (%s) to the archive: %w", n.Role, n.Desc.Digest, refsOf(n), err)
	}
	return nil
}

func writeSidecar(out, sum string) error {
	return parts.WriteFileAtomic(out+".sha256", []byte(sum+"  "+filepath.Base(out)+"\n"))
}

// syncDir makes the renames durable; a failure only weakens durability, so
// it is not reported.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

// buildIndex writes index.json: one entry per exported image named by its
// full source reference, one untagged entry per referrer (so oras and
// regctl see them in the unpacked layout), one named entry per cosign tag;
// an incremental bundle's annotations name its base (see verify/base.go).
func buildIndex(p *Plan, lo *leftOut) ([]byte, error) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	if lo != nil {
		idx.Annotations = lo.annotations()
	}
	for _, img := range p.Images {
		d := clean(img.Desc)
		d.Annotations = map[string]string{
			ocispec.AnnotationRefName: img.Ref,
			annotationContainerdName:  img.Ref,
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	for _, r := range p.Referrers {
		d := clean(r.Desc)
		if len(r.Desc.Annotations) > 0 || r.TagRef != "" {
			d.Annotations = map[string]string{}
		}
		for k, v := range r.Desc.Annotations {
			d.Annotations[k] = v
		}
		if r.TagRef != "" {
			d.Annotations[ocispec.AnnotationRefName] = r.TagRef
			d.Annotations[annotationContainerdName] = r.TagRef
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("encoding index.json: %w", err)
	}
	if len(data) > layout.MaxIndexSize {
		return nil, fmt.Errorf("index.json would exceed %d MiB (%d entries): export fewer images per bundle", layout.MaxIndexSize>>20, len(idx.Manifests))
	}
	// What the far side would refuse to read is not written.
	manifests, bytes := 0, int64(0)
	for _, n := range p.Nodes {
		if n.IsManifest() {
			manifests++
			bytes += n.Desc.Size
		}
	}
	switch lim := graph.DefaultLimits; {
	case len(idx.Manifests) > graph.MaxIndexEntries:
		return nil, fmt.Errorf("the bundle would list %d images and referrers, more than the %d a bundle may (docs/LIMITS.md): export fewer images per bundle", len(idx.Manifests), graph.MaxIndexEntries)
	case manifests > lim.Manifests || bytes > lim.ManifestBytes:
		return nil, fmt.Errorf("the bundle would hold %d manifests (%d bytes), more than the %d (%d bytes) a bundle may (docs/LIMITS.md): export fewer images per bundle", manifests, bytes, lim.Manifests, lim.ManifestBytes)
	}
	return data, nil
}

// ctxReader stops a long copy when the export is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

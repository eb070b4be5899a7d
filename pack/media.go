package pack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/sign"
	"github.com/bundle-dev/bundle/layout"
)

// media is how the archive goes to disk: one file or parts with parity,
// and a signature over its checksum file.
type media struct {
	split    int64
	parity   int
	maxParts int
	signer   signature.Signer
}

// newMedia checks the options and loads the signing key before anything
// is fetched: a wrong password must not cost an export.
func newMedia(opts Options) (*media, error) {
	m := &media{split: opts.SplitSize, parity: opts.Parity}
	if m.split < 0 {
		return nil, fmt.Errorf("split size %d: want a positive size", m.split)
	}
	if m.parity < 0 || m.parity >= parts.MaxShards/2 {
		return nil, fmt.Errorf("--parity %d: want 0 to %d", m.parity, parts.MaxShards/2-1)
	}
	if m.parity > 0 && m.split == 0 {
		return nil, fmt.Errorf("--parity %d needs --split-size: parity parts rebuild lost parts", m.parity)
	}
	if opts.SignKey != "" {
		s, err := sign.LoadSigner(opts.SignKey, opts.KeyPassword)
		if err != nil {
			return nil, err
		}
		m.signer = s
	}
	return m, nil
}

// plan sizes the parity code for the archive the plan will make: a code
// over just the parts needed (and a margin) rebuilds faster than one over
// the most a code allows.
func (m *media) plan(p *Plan, index []byte) error {
	if m.split == 0 || m.parity == 0 {
		return nil
	}
	// A tar adds at most 1 KiB per entry; compression of incompressible
	// data adds well under 1%.
	est := p.Size() + int64(len(p.Nodes)+3)*1024 + int64(len(index))
	est += est/100 + 1<<20
	need := int((est+m.split-1)/m.split) + 1
	if limit := parts.MaxShards - m.parity; need > limit {
		if (p.Size()+m.split-1)/m.split > int64(limit) {
			return fmt.Errorf("the bundle holds %d bytes: more than the %d parts of %d bytes that %d parity parts can cover; use a larger --split-size", p.Size(), limit, m.split, m.parity)
		}
		need = limit
	}
	m.maxParts = need
	return nil
}

// writeParts writes the archive as parts of out; on failure no part is
// left under its final name.
func (m *media) writeParts(ctx context.Context, out string, comp layout.Compression, index []byte, blobs []*Node, open openFunc) (archiveResult, error) {
	var res archiveResult
	w, err := parts.Create(out, parts.Options{PartSize: m.split, Parity: m.parity, MaxParts: m.maxParts})
	if err != nil {
		return res, err
	}
	h := sha256.New()
	sink := newAsyncSink(w, h)
	err = writeLayout(ctx, sink, comp, index, blobs, open)
	if cerr := sink.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing the parts of %s: %w: check the space left on its disk", out, cerr)
	}
	if err != nil {
		w.Abort()
		return res, err
	}
	sc, err := w.Commit()
	if err != nil {
		return res, err
	}
	res = archiveResult{sha256: hex.EncodeToString(h.Sum(nil)), size: sink.n}
	for _, s := range sc.Sums {
		res.parts = append(res.parts, s.Name)
	}
	return res, nil
}

// sign signs out's checksum file, when a key was given.
func (m *media) sign(out string) (string, error) {
	if m.signer == nil {
		return "", nil
	}
	return sign.SignFile(parts.SidecarName(out), m.signer)
}

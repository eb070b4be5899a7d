package pack

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/sign"
	"github.com/bundle-dev/bundle/layout"
)

// media is how the archive goes to disk: one file or parts with parity,
// and a signature over its checksum file.
type media struct {
	split  int64
	parity int
	signer signature.Signer
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

// plan refuses, before anything is fetched, a bundle that needs more
// parts than parity can cover.
func (m *media) plan(p *Plan) error {
	if m.split == 0 || m.parity == 0 {
		return nil
	}
	if limit := int64(parts.MaxShards - m.parity); (p.Size()+m.split-1)/m.split > limit {
		return fmt.Errorf("the bundle holds %d bytes: more than the %d parts of %d bytes that %d parity parts can cover; use a larger --split-size", p.Size(), limit, m.split, m.parity)
	}
	return nil
}

// writeParts writes the archive as parts of out; on failure no part is
// left under its final name.
func (m *media) writeParts(ctx context.Context, out string, comp layout.Compression, index []byte, blobs []*Node, open openFunc) (archiveResult, error) {
	var res archiveResult
	w, err := parts.Create(out, parts.Options{PartSize: m.split, Parity: m.parity})
	if err != nil {
		return res, err
	}
	// Each part is hashed as it is written; a hash of the whole would be
	// one more pass over every byte for a sum nobody checks.
	sink := newAsyncSink(w, nil)
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
	// A whole archive left by an earlier export under the same name would
	// be read in place of the parts, against a checksum file that now
	// lists the parts: it is replaced, as a plain export replaces it.
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("removing the earlier %s: %w", out, err)
	}
	res = archiveResult{size: sink.n}
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

package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/safetext"
	"github.com/bundle-dev/bundle/internal/sign"
	"github.com/bundle-dev/bundle/layout"
)

// Signature states in a Report or an Inventory.
const (
	SignatureVerified  = "verified"
	SignatureUnchecked = "signed, not checked (pass --key)"
	SignatureNone      = "none"
)

// openParts is the hook by which every command reads a bundle carried in
// parts: given FILE.000, any part, FILE.sha256 or FILE with only its parts
// beside it, it checks the parts, rebuilds lost ones from parity, and opens
// them as one archive. ok is false when path is not such a bundle.
func openParts(ctx context.Context, path string, opts Options) (b *Bundle, ok bool, err error) {
	if _, ok := parts.Locate(path); !ok {
		return nil, false, nil
	}
	set, err := parts.Open(ctx, path, parts.OpenOptions{TempDir: opts.TempDir, SizesOnly: opts.partSizesOnly})
	var tooMany *parts.TooDamagedError
	if errors.As(err, &tooMany) {
		tooMany.Needed = imagesInLostParts(ctx, tooMany.Status, opts)
	}
	if err != nil {
		return nil, true, fmt.Errorf("open bundle: %w", err)
	}
	if r := set.Status.Rebuilt(); len(r) > 0 && opts.Notice != nil {
		opts.Notice("rebuilt %s from parity in a temporary file: run 'bundle repair %s' to write them back", strings.Join(r, ", "), parts.SidecarName(set.Status.Base))
	}
	b, err = openReaderAt(ctx, set.Status.Base, set, set.Size(), set.Close, opts)
	if err != nil {
		return nil, true, err
	}
	b.Parts = set.Status
	return b, true, nil
}

// imagesInLostParts names the images whose blobs lie, even in part, in
// the parts lost past parity: what the site must copy again to get them.
// It is nil when the rest cannot be listed (the lost parts hold the
// archive's metadata, or it is a stream).
func imagesInLostParts(ctx context.Context, st *parts.Status, opts Options) []string {
	set, err := parts.OpenLost(st)
	if err != nil {
		return nil
	}
	b, err := openReaderAt(ctx, st.Base, set, set.Size(), set.Close, Options{TempDir: opts.TempDir, Limits: opts.Limits})
	if err != nil {
		return nil
	}
	defer b.Close()
	if b.random == nil {
		return nil
	}
	lost := map[digest.Digest]bool{}
	buf := make([]byte, copyBufSize)
	for d := range b.Present {
		rc, err := b.random.Open(layout.BlobPath(d))
		if err == nil {
			_, err = io.CopyBuffer(io.Discard, rc, buf)
			rc.Close()
		}
		if errors.Is(err, parts.ErrLost) {
			lost[d] = true
		}
	}
	var names []string
	for _, r := range b.Graph.Roots {
		if r.Name != "" && reachesAny(b.Graph, r.Desc.Digest, lost, map[digest.Digest]bool{}) {
			names = append(names, r.Name)
		}
	}
	return names
}

// reachesAny says whether d or anything below it is in set.
func reachesAny(g *graph.Graph, d digest.Digest, set, seen map[digest.Digest]bool) bool {
	if set[d] {
		return true
	}
	if seen[d] {
		return false
	}
	seen[d] = true
	n := g.Node(d)
	if n == nil {
		return false
	}
	for _, c := range n.Children() {
		if reachesAny(g, c.Digest, set, seen) {
			return true
		}
	}
	return false
}

// sidecarOf is the checksum file that covers the bundle at path, "" for
// standard input.
func sidecarOf(path string) string {
	if base, ok := parts.Locate(path); ok {
		return parts.SidecarName(base)
	}
	if path == "-" {
		return ""
	}
	return path + parts.SidecarSuffix
}

// checkSignature checks FILE.sha256.sig with opts.Key, before anything
// else is read; without a key it only says whether there is one.
func checkSignature(path string, opts Options) (string, error) {
	sidecar := sidecarOf(path)
	if opts.Key == "" {
		if sidecar != "" && sign.Signed(sidecar) {
			return SignatureUnchecked, nil
		}
		return SignatureNone, nil
	}
	if sidecar == "" {
		return "", errors.New("--key: a bundle read from standard input has no signature to check; give its file")
	}
	v, err := sign.LoadVerifier(opts.Key)
	if err != nil {
		return "", err
	}
	if err := sign.VerifyFile(sidecar, v); err != nil {
		return "", fmt.Errorf("signature check failed, nothing else was done: %w", err)
	}
	return SignatureVerified, nil
}

// Authenticate is what import runs first with --key: the signature over
// FILE.sha256, then the bundle against it. For one file that is its
// sha256. For parts it is that FILE.sha256 lists them and that no more are
// lost than parity rebuilds: Open, which import runs next and before any
// push, hashes every part against the same (now authenticated) list and
// refuses or rebuilds a part that differs, so hashing them here too would
// only read the whole bundle once more. An error means nothing of the
// bundle may be used.
func Authenticate(ctx context.Context, path string, opts Options) error {
	if _, err := checkSignature(path, opts); err != nil {
		return err
	}
	if _, ok := parts.Locate(path); ok {
		st, err := parts.InspectSizes(ctx, path)
		if err != nil {
			return err
		}
		if !st.Sidecar {
			return fmt.Errorf("%s does not list the parts of the bundle: it is not the checksum file bundle signs", parts.SidecarName(st.Base))
		}
		return st.CheckParity()
	}
	want, err := readSidecar(path)
	if err != nil || want == "" {
		return fmt.Errorf("%s.sha256 is signed but cannot be used (%v): copy it again", path, err)
	}
	res := <-hashFile(ctx, path)
	if res.err != nil {
		return fmt.Errorf("read %s: %w", path, res.err)
	}
	if res.sum != want {
		return fmt.Errorf("%s hashes to sha256 %s but the signed %s.sha256 says %s: the bundle was changed after signing or damaged; copy it again", path, res.sum, path, want)
	}
	return nil
}

// checkParts is Check for a bundle carried in parts: each part against
// FILE.sha256 (done by Open, which rebuilds what parity can), then the
// archive they make as for one file.
func checkParts(ctx context.Context, path, signature string, opts Options) (*Report, error) {
	rep := &Report{File: path, Sidecar: SidecarMissing, Signature: signature}
	b, err := Open(ctx, path, opts)
	var tooMany *parts.TooDamagedError
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.As(err, &tooMany):
		rep.Sidecar = SidecarMismatch
		for _, p := range tooMany.Bad {
			rep.add(Problem{Severity: SeverityError, Code: "damaged-part", Entry: p.Name, Offset: p.Offset, Message: partMessage(p)})
		}
		for _, name := range tooMany.Needed {
			rep.add(Problem{Severity: SeverityError, Code: "lost-image", Entry: name,
				Message: fmt.Sprintf("image %s has blobs in the parts lost: copy them again to import it", name)})
		}
		rep.add(Problem{Severity: SeverityError, Code: "unreadable", Message: err.Error()})
	case err != nil:
		rep.add(Problem{Severity: SeverityError, Code: "unreadable", Offset: offsetOf(err), Message: err.Error()})
	default:
		defer b.Close()
		rep.File, rep.Parts = b.Parts.Base, b.Parts
		if err := checkBlobs(ctx, b, rep); err != nil {
			return nil, err
		}
		rep.Sidecar = partsSidecar(rep, b.Parts)
	}
	rep.summarise()
	return rep, nil
}

func partMessage(p parts.PartStatus) string {
	what := "a parity part"
	if !p.Parity {
		what = fmt.Sprintf("bytes %d to %d of the archive", p.Offset, p.Offset+p.Size)
	}
	return fmt.Sprintf("part %s is %s (%s); it holds %s", p.Name, p.State, p.Problem, what)
}

// partsSidecar reports the parts against FILE.sha256.
func partsSidecar(rep *Report, st *parts.Status) string {
	name := parts.SidecarName(st.Base)
	if !st.Sidecar {
		rep.add(Problem{Severity: SeverityInfo, Code: "sidecar", Entry: name, Message: fmt.Sprintf("no %s listing the parts: they were not checked one by one", name)})
		return SidecarMissing
	}
	state := SidecarOK
	for _, p := range st.Parts {
		switch p.State {
		case parts.StateOK:
		case parts.StateRebuilt:
			state = SidecarRebuilt
			rep.add(Problem{Severity: SeverityWarning, Code: "rebuilt-part", Entry: p.Name, Offset: p.Offset,
				Message: fmt.Sprintf("part %s was %s, rebuilt from parity for this check: run 'bundle repair %s' to write it back", p.Name, p.Problem, name)})
		default:
			state = SidecarRebuilt
			rep.add(Problem{Severity: SeverityWarning, Code: "damaged-part", Entry: p.Name, Offset: p.Offset,
				Message: partMessage(p) + fmt.Sprintf(": not needed to read the bundle; run 'bundle repair %s'", name)})
		}
	}
	return state
}

// mediaOf fills what inspect shows of parts and signature.
func mediaOf(b *Bundle, path string) (*parts.Status, string) {
	sig := SignatureNone
	if s := sidecarOf(path); s != "" {
		if _, err := os.Stat(s + sign.SigSuffix); err == nil {
			sig = SignatureUnchecked
		}
	}
	return b.Parts, sig
}

// writeMedia says how the bundle travels: its parts, parity and signature.
func writeMedia(w io.Writer, inv *Inventory) {
	if st := inv.Parts; st != nil {
		first, last := st.Parts[0].Name, st.Parts[0].Name
		data, parity := 0, 0
		for _, p := range st.Parts {
			if p.Parity {
				parity++
				continue
			}
			data++
			last = p.Name
		}
		fmt.Fprintf(w, "split into %d part(s), %s to %s", data, safetext.String(first), safetext.String(last))
		if st.Layout != nil {
			fmt.Fprintf(w, " of %s each", humanSize(st.Layout.PartSize))
		}
		fmt.Fprintf(w, "; %d parity part(s)", parity)
		if !st.Sidecar {
			fmt.Fprint(w, "; no checksum file lists them")
		}
		if r := st.Rebuilt(); len(r) > 0 {
			fmt.Fprintf(w, "; rebuilt from parity: %s", safetext.String(strings.Join(r, ", ")))
		}
		fmt.Fprintln(w)
	}
	if inv.Signature != "" && inv.Signature != SignatureNone {
		fmt.Fprintf(w, "signature: %s\n", inv.Signature)
	}
}

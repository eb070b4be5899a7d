package verify

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/safetext"
	"github.com/bundle-dev/bundle/layout"
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
		rep.File, rep.Sidecar = tooMany.Base, SidecarMismatch
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

// expectedSum is what the file at path must hash to by its FILE.sha256,
// with the hashing started beside the caller's reading: the sha256 of the
// whole file, or, when FILE.sha256 lists parts (the file is them joined,
// cat FILE.0* > FILE), the sha256 of each part-sized slice, joined by
// commas. want is "" when there is no sidecar.
func expectedSum(ctx context.Context, path string) (want string, got <-chan hashResult, err error) {
	if path != "-" {
		if sc, err := parts.ReadSidecar(path + parts.SidecarSuffix); err == nil && sc.Split() {
			var sums []string
			for _, s := range sc.Sums[:sc.Layout.Data] {
				sums = append(sums, s.SHA256)
			}
			return strings.Join(sums, ","), hashSlices(ctx, path, sc.Layout.PartSize), nil
		}
	}
	want, err = readSidecar(path)
	if want == "" || err != nil {
		return want, nil, err
	}
	return want, hashFile(ctx, path), nil
}

// hashSlices hashes the file in slices of size bytes, as the parts it was
// joined from, on its own goroutine.
func hashSlices(ctx context.Context, path string, size int64) <-chan hashResult {
	out := make(chan hashResult, 1)
	go func() {
		f, err := os.Open(path)
		if err != nil {
			out <- hashResult{err: err}
			return
		}
		defer f.Close()
		var sums []string
		buf := make([]byte, copyBufSize)
		r := &ctxReader{ctx: ctx, r: bufio.NewReaderSize(f, copyBufSize)}
		for {
			h := sha256.New()
			n, err := io.CopyBuffer(h, io.LimitReader(r, size), buf)
			if err != nil {
				out <- hashResult{err: err}
				return
			}
			if n == 0 && len(sums) > 0 {
				break
			}
			sums = append(sums, hex.EncodeToString(h.Sum(nil)))
			if n < size {
				break
			}
		}
		out <- hashResult{sum: strings.Join(sums, ",")}
	}()
	return out
}

// sumMismatch says where a file differs from its FILE.sha256: for a file
// joined from parts, which slice.
func sumMismatch(path, name, want, got string) string {
	w, g := strings.Split(want, ","), strings.Split(got, ",")
	if len(w) == 1 && len(g) == 1 {
		return fmt.Sprintf("the file hashes to sha256 %s but %s says %s: the copy is damaged, copy it again", got, name, want)
	}
	for i := range max(len(w), len(g)) {
		if i >= len(w) || i >= len(g) || w[i] != g[i] {
			return fmt.Sprintf("%s is joined from %d parts but its part %d differs from what %s lists for it (%d parts listed): copy that part again, or read the parts themselves", path, len(g), i, name, len(w))
		}
	}
	return ""
}

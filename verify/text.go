package verify

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/safetext"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// WriteText writes the inventory as an indented tree with sizes and totals.
func (inv *Inventory) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	how := "streamed"
	if inv.Seekable {
		how = "seekable"
	}
	fmt.Fprintf(bw, "%s: %s, %s, %s (read %s to list it)\n", safetext.String(inv.File), inv.Compression, how,
		humanSize(inv.ArchiveSize), humanSize(inv.BytesRead))
	writeMedia(bw, inv)
	if inv.Bundle != "" {
		fmt.Fprintf(bw, "index.json %s\n", inv.Bundle)
	}
	if inv.Base != nil {
		fmt.Fprintf(bw, "incremental: %d blobs left out, carried by base %s\n", inv.Base.LeftOut, safetext.String(strings.Join(inv.Base.Bases, ", ")))
	}
	for _, n := range inv.Images {
		writeNode(bw, n, 0, "")
	}
	fmt.Fprintf(bw, "%d images, %d blobs, %s of content, %s shared between images\n",
		len(inv.Images), inv.Blobs, humanSize(inv.Bytes), humanSize(inv.SharedBytes))
	if inv.Truncated {
		fmt.Fprintln(bw, "the bundle is too large or too deep to show whole: later repeats are listed without their trees")
	}
	return bw.Flush()
}

func writeNode(w io.Writer, n *Node, depth int, role string) {
	indent := strings.Repeat("  ", depth)
	var label []string
	if role != "" {
		label = append(label, role)
	}
	for _, s := range []string{n.Reference, n.Platform, n.ArtifactType} {
		if s != "" {
			label = append(label, safetext.String(s))
		}
	}
	label = append(label, safetext.String(kindOf(n.MediaType)), safetext.String(shortDigest(n.Digest)), humanSize(n.Size))
	if n.ShownAbove {
		label = append(label, "(shown above)")
	}
	fmt.Fprintf(w, "%s%s\n", indent, strings.Join(label, "  "))
	for _, k := range sortedAnnotationKeys(n.Annotations) {
		fmt.Fprintf(w, "%s    %s=%s\n", indent, safetext.String(k), safetext.String(n.Annotations[k]))
	}
	for _, c := range n.Children {
		writeNode(w, c, depth+1, "")
	}
	for _, r := range n.Referrers {
		writeNode(w, r, depth+1, "referrer")
	}
}

func kindOf(mt string) string {
	switch {
	case graph.IsIndex(mt):
		return "index"
	case mt == graph.MediaTypeArtifactManifest:
		return "artifact"
	case mt == ocispec.MediaTypeImageManifest || mt == graph.MediaTypeDockerManifest:
		return "manifest"
	case mt == "":
		return "unknown"
	}
	return mt
}

// shortDigest keeps the algorithm and 12 hex digits, as docker does.
func shortDigest(d string) string {
	alg, enc, ok := strings.Cut(d, ":")
	if !ok || len(enc) <= 12 {
		return d
	}
	return alg + ":" + enc[:12]
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func sortedAnnotationKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

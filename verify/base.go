package verify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// Annotations of an incremental bundle's index.json. The list of blobs
// left out is not written (it can be as long as the bundle's); its digest
// is, so that verify and import can tell the blobs the base accounts for
// from a hole, exactly.
const (
	// AnnotationBase names the bases: the digests of their index.json,
	// comma-separated.
	AnnotationBase = "dev.bundle.base"
	// AnnotationLeftOut is how many blobs the base accounts for.
	AnnotationLeftOut = "dev.bundle.base.left-out"
	// AnnotationLeftOutDigest is LeftOutDigest of those blobs.
	AnnotationLeftOutDigest = "dev.bundle.base.left-out.digest"
)

// Incremental is what an incremental bundle says of its base.
type Incremental struct {
	Bases      []string      `json:"bases"`
	LeftOut    int           `json:"leftOut"`
	ListDigest digest.Digest `json:"leftOutDigest"`
}

// LeftOutDigest is the digest of a list of blobs: their digests sorted,
// one a line, each line ended by "\n".
func LeftOutDigest(ds []digest.Digest) digest.Digest {
	s := slices.Clone(ds)
	slices.Sort(s)
	var b strings.Builder
	for _, d := range s {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return digest.FromString(b.String())
}

// Incremental reads the base annotations of index.json; nil for a full
// bundle.
func (b *Bundle) Incremental() *Incremental {
	if b.Graph == nil || b.Graph.Index == nil {
		return nil
	}
	a := b.Graph.Index.Annotations
	if a[AnnotationBase] == "" {
		return nil
	}
	n, _ := strconv.Atoi(a[AnnotationLeftOut])
	return &Incremental{Bases: strings.Split(a[AnnotationBase], ","), LeftOut: n, ListDigest: digest.Digest(a[AnnotationLeftOutDigest])}
}

// Absent lists the blobs (not manifests) the graph needs and the bundle
// does not hold, foreign layers aside, sorted by digest. For a stream it
// means something only once Blobs has run.
func (b *Bundle) Absent() []ocispec.Descriptor {
	seen := map[digest.Digest]bool{}
	var out []ocispec.Descriptor
	for _, n := range b.Graph.Nodes() {
		for _, c := range n.Children() {
			if seen[c.Digest] || graph.IsManifest(c.MediaType) || graph.IsForeign(c) || b.Graph.Node(c.Digest) != nil {
				continue
			}
			seen[c.Digest] = true
			if _, ok := b.Present[c.Digest]; !ok {
				out = append(out, c)
			}
		}
	}
	slices.SortFunc(out, func(x, y ocispec.Descriptor) int { return strings.Compare(string(x.Digest), string(y.Digest)) })
	return out
}

// FromBase returns the absent blobs when they are exactly those the base
// accounts for (same count, same list digest), and whether they are. A
// full bundle accounts for none.
func (b *Bundle) FromBase() ([]ocispec.Descriptor, bool) {
	inc := b.Incremental()
	if inc == nil {
		return nil, false
	}
	absent := b.Absent()
	ds := make([]digest.Digest, len(absent))
	for i, d := range absent {
		ds[i] = d.Digest
	}
	if len(absent) != inc.LeftOut || LeftOutDigest(ds) != inc.ListDigest {
		return absent, false
	}
	return absent, true
}

// checkBase is verify's part: the blobs an incremental bundle's base
// accounts for, or, when what is absent is not what the bundle says it left
// out, an error saying so (the absent blobs are then missing, as in a full
// bundle).
func checkBase(b *Bundle, rep *Report) map[digest.Digest]bool {
	inc := b.Incremental()
	if inc == nil {
		return nil
	}
	absent, ok := b.FromBase()
	if !ok {
		rep.add(Problem{Severity: SeverityError, Code: "base-mismatch", Message: fmt.Sprintf(
			"the bundle says %d blobs were left out for its base %s, but %d are absent and they are not that list: export it again",
			inc.LeftOut, strings.Join(inc.Bases, ","), len(absent))})
		return nil
	}
	out := make(map[digest.Digest]bool, len(absent))
	for _, d := range absent {
		out[d.Digest] = true
	}
	return out
}

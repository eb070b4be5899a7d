package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// ReceiptKind and ReceiptVersion identify a receipt document.
const (
	ReceiptKind    = "bundle-receipt"
	ReceiptVersion = 1
)

// maxReceipt bounds a receipt read: 100,000 manifests and 300,000 blobs
// at 75 bytes a digest.
const maxReceipt = 64 << 20

// Receipt says what a target holds of one bundle: written by `bundle
// import --receipt` after a successful import, or by `bundle inspect
// --receipt` for the bundle itself, and read by `bundle export --since` as
// the base of the next, incremental, bundle. docs/SPEC.md documents it.
type Receipt struct {
	SchemaVersion int    `json:"schemaVersion"`
	Kind          string `json:"kind"`
	// Bundle is the digest of the bundle's index.json: its identity.
	Bundle string `json:"bundle"`
	// Bases are the bundle's own bases when it is incremental.
	Bases  []string       `json:"bases,omitempty"`
	Target string         `json:"target,omitempty"` // import only
	Images []ReceiptImage `json:"images"`
	// Manifests and Blobs are digests, sorted. Blobs include those an
	// incremental bundle left out: the import checked the target has them.
	Manifests []string `json:"manifests"`
	Blobs     []string `json:"blobs"`
	// Repositories lists, per source repository path (the host left out,
	// as import does), the blobs its images need: a blob is left out of
	// the next bundle only for an image of a repository that has it, so
	// that the importer finds it there (and mounts it from there).
	Repositories map[string][]string `json:"repositories"`
}

// ReceiptImage is one image of the bundle.
type ReceiptImage struct {
	Reference string `json:"reference"`        // as exported
	Target    string `json:"target,omitempty"` // as imported
	Digest    string `json:"digest"`
}

// ReceiptOf describes the bundle b: its images, manifests and the blobs
// its graph needs (foreign layers aside).
func ReceiptOf(b *Bundle) (*Receipt, error) {
	if !b.Written() {
		return nil, fmt.Errorf("bundle %s was not written by bundle (its oci-layout names no index.json digest): it cannot be a base", b.Path)
	}
	r := &Receipt{SchemaVersion: ReceiptVersion, Kind: ReceiptKind, Bundle: b.Info.IndexDigest.String(), Images: []ReceiptImage{}, Manifests: []string{}, Blobs: []string{}}
	if inc := b.Incremental(); inc != nil {
		r.Bases = inc.Bases
	}
	for _, root := range b.Graph.Roots {
		if root.Kind == graph.Image && root.Name != "" {
			r.Images = append(r.Images, ReceiptImage{Reference: root.Name, Digest: root.Desc.Digest.String()})
		}
	}
	blobs := map[string]bool{}
	for _, n := range b.Graph.Nodes() {
		if n.Err != nil {
			continue
		}
		r.Manifests = append(r.Manifests, n.Desc.Digest.String())
		for _, c := range n.Children() {
			if isBlob(b, c) {
				blobs[c.Digest.String()] = true
			}
		}
	}
	for d := range blobs {
		r.Blobs = append(r.Blobs, d)
	}
	slices.Sort(r.Manifests)
	slices.Sort(r.Blobs)
	r.Repositories = blobsByRepository(b)
	return r, nil
}

func isBlob(b *Bundle, c ocispec.Descriptor) bool {
	return !graph.IsManifest(c.MediaType) && !graph.IsForeign(c) && b.Graph.Node(c.Digest) == nil
}

// blobsByRepository walks from each named image (children and referrers,
// each manifest once per repository) to the blobs it needs.
func blobsByRepository(b *Bundle) map[string][]string {
	seen := map[string]map[digest.Digest]bool{}
	out := map[string][]string{}
	for _, root := range b.Graph.Roots {
		repo := RepositoryPath(root.Name)
		if root.Name == "" || repo == "" {
			continue
		}
		if seen[repo] == nil {
			seen[repo] = map[digest.Digest]bool{}
		}
		queue := []ocispec.Descriptor{root.Desc}
		for len(queue) > 0 {
			d := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			if seen[repo][d.Digest] {
				continue
			}
			seen[repo][d.Digest] = true
			n := b.Graph.Node(d.Digest)
			if n == nil {
				if isBlob(b, d) {
					out[repo] = append(out[repo], d.Digest.String())
				}
				continue
			}
			queue = append(queue, n.Children()...)
			for _, ref := range n.Referrers {
				queue = append(queue, ref.Desc)
			}
		}
	}
	for repo := range out {
		slices.Sort(out[repo])
	}
	return out
}

// RepositoryPath is the repository of a full reference without its host,
// tag or digest: "reg:5000/team/app:1.0" is "team/app". Import keeps that
// path (under its prefix) whatever the source host.
func RepositoryPath(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	_, p, ok := strings.Cut(ref, "/")
	if !ok {
		return ""
	}
	return p
}

// Held is, for each blob the receipt says the target holds, the
// repositories (paths without host) it holds it in.
func (r *Receipt) Held() map[digest.Digest]map[string]bool {
	out := make(map[digest.Digest]map[string]bool, len(r.Blobs))
	for repo, ds := range r.Repositories {
		for _, s := range ds {
			d := digest.Digest(s)
			if out[d] == nil {
				out[d] = map[string]bool{}
			}
			out[d][repo] = true
		}
	}
	return out
}

// WriteReceipt writes r to path, indented, through a temporary file so
// that a failure leaves no half receipt.
func WriteReceipt(path string, r *Receipt) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding receipt: %w", err)
	}
	data = append(data, '\n')
	tmp := path + ".partial"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing receipt %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing receipt %s: %w", path, err)
	}
	return nil
}

// ParseReceipt reads a receipt document, strictly: unknown fields and
// invalid digests are refused, since a base read wrong leaves blobs out of
// a bundle.
func ParseReceipt(name string, data []byte) (*Receipt, error) {
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("receipt %s: %w", name, err)
	}
	if r.Kind != ReceiptKind || r.SchemaVersion != ReceiptVersion {
		return nil, fmt.Errorf("receipt %s: kind %q version %d, want %q version %d", name, r.Kind, r.SchemaVersion, ReceiptKind, ReceiptVersion)
	}
	all := append(append([]string{r.Bundle}, r.Manifests...), r.Blobs...)
	for _, ds := range r.Repositories {
		all = append(all, ds...)
	}
	for _, s := range all {
		if err := digest.Digest(s).Validate(); err != nil {
			return nil, fmt.Errorf("receipt %s: %q: %w", name, s, err)
		}
	}
	return &r, nil
}

// LoadBase reads what path says a target holds: a receipt (a JSON file),
// or a bundle, of which only the metadata is read when it is seekable.
func LoadBase(ctx context.Context, path string) (*Receipt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", path, err)
	}
	head, _ := bufio.NewReader(f).Peek(64)
	f.Close()
	if first := bytes.TrimLeft(head, " \t\r\n"); len(first) > 0 && first[0] == '{' {
		data, err := readReceiptFile(path)
		if err != nil {
			return nil, err
		}
		return ParseReceipt(path, data)
	}
	b, err := Open(ctx, path, Options{})
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", path, err)
	}
	defer b.Close()
	return ReceiptOf(b)
}

func readReceiptFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("receipt %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxReceipt+1))
	if err != nil {
		return nil, fmt.Errorf("receipt %s: %w", path, err)
	}
	if len(data) > maxReceipt {
		return nil, errors.New("receipt " + path + ": larger than 64 MiB")
	}
	return data, nil
}

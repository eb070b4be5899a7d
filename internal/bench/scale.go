package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// The scale benchmark of issue 16: many tiny images rather than many
// bytes. Each image has a 4 KiB base layer shared by all, an 8 KiB layer of
// its own, an SBOM referrer and a signature on the SBOM; the images live in
// N/10 repositories of a docker-registry 2.8, which has no referrers API, so
// the referrers travel by fallback tag.

// ScaleRow is one N: export and import measured, with the requests each
// made per image beside the fewest the protocol needs.
type ScaleRow struct {
	Images         int
	Export, Import Sample
	// Planning is how long the export's plan took, FirstWrite when its
	// first blob reached the disk (issue 16: within 5 s whatever N).
	Planning, FirstWrite time.Duration
	ExportRequests       int64
	ImportRequests       int64
	TargetTags           int
	Err                  string
	Regctl               RegctlLoop // the same images copied by regctl, for comparison
}

// Fewest requests per image the protocol allows, for the table: export
// resolves the tag, reads the manifest, its config and unique layer, the
// fallback index, the SBOM (manifest, layer), its fallback index, the
// signature (manifest, layer); import uploads 5 blobs (POST and PUT each),
// puts 3 manifests and 2 fallback indexes.
const (
	minExportRequests = 10
	minImportRequests = 15
)

// RunScale measures export and import of n tiny signed images for each n.
func RunScale(ctx context.Context, cfg Config, ns []int) ([]ScaleRow, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	work, err := os.MkdirTemp(cfg.TempDir, "bundlebench-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var rows []ScaleRow
	for _, n := range ns {
		row := ScaleRow{Images: n}
		if err := runScale(ctx, cfg, work, n, &row); err != nil {
			if ctx.Err() != nil {
				return rows, err
			}
			row.Err = err.Error()
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func runScale(ctx context.Context, cfg Config, work string, n int, row *ScaleRow) error {
	dir := filepath.Join(work, fmt.Sprint(n))
	src, err := StartRegistry(ctx, cfg.Registry, filepath.Join(dir, "source"))
	if err != nil {
		return err
	}
	defer src.RemoveAll()
	logf(cfg.Log, "scale %d: pushing %d images with an SBOM and a signature each", n, n)
	refs, err := pushTiny(ctx, NewClient(src.Host), n)
	if err != nil {
		return err
	}
	srcProxy, srcCount := countingProxy(src.Host)
	defer srcProxy.Close()
	var lines []string
	for _, r := range refs {
		lines = append(lines, strings.Replace(r, "HOST", hostOf(srcProxy), 1))
	}
	archive := filepath.Join(dir, "scale.tar.zst")
	logf(cfg.Log, "scale %d: export", n)
	args := append([]string{"export", "--quiet", "--json", "--plain-http", "--cache", filepath.Join(dir, "cache"), "-o", archive}, lines...)
	row.Export, err = RunChild(ctx, dir, cfg.Bundle, args...)
	row.ExportRequests = srcCount.Load()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var rep struct {
		Planning   time.Duration `json:"planningNs"`
		FirstWrite time.Duration `json:"firstWriteNs"`
	}
	if err := json.Unmarshal(row.Export.Stdout, &rep); err != nil {
		return fmt.Errorf("export --json: %w", err)
	}
	row.Planning, row.FirstWrite = rep.Planning, rep.FirstWrite
	dst, err := StartRegistry(ctx, cfg.Registry, filepath.Join(dir, "target"))
	if err != nil {
		return err
	}
	defer dst.RemoveAll()
	dstProxy, dstCount := countingProxy(dst.Host)
	defer dstProxy.Close()
	logf(cfg.Log, "scale %d: import", n)
	row.Import, err = RunChild(ctx, dir, cfg.Bundle, "import", "--quiet", "--plain-http", "--target", hostOf(dstProxy)+"/mirror", archive)
	row.ImportRequests = dstCount.Load()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if row.TargetTags, err = checkTags(ctx, NewClient(dst.Host), n, "mirror/"); err != nil {
		return fmt.Errorf("after the import %w", err)
	}
	row.Regctl = runRegctl(ctx, cfg, dir, refs, src, srcProxy, srcCount)
	return ctx.Err()
}

// checkTags is an independent look at a target: the tags of a sample of
// the n images (every one up to 50) are there under prefix. It returns how
// many it checked.
func checkTags(ctx context.Context, c *Client, n int, prefix string) (int, error) {
	checked := 0
	for i := 0; i < n; i += max(1, n/50) {
		repo := fmt.Sprintf("%steam%d/app", prefix, i%max(1, n/10))
		if _, err := c.resolve(ctx, repo, fmt.Sprint("v", i)); err != nil {
			return checked, err
		}
		checked++
	}
	return checked, nil
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// countingProxy counts every request that reaches host through it.
func countingProxy(host string) (*httptest.Server, *atomic.Int64) {
	target, _ := url.Parse("http://" + host)
	var n atomic.Int64
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // upload locations lead back through the proxy
	}}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		rp.ServeHTTP(w, r)
	})), &n
}

// pushTiny pushes n signed tiny images and returns their references with
// "HOST" for the registry.
func pushTiny(ctx context.Context, c *Client, n int) ([]string, error) {
	repos := max(1, n/10)
	base := bytes.Repeat([]byte("base layer "), 4096/11)
	baseDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(base), Size: int64(len(base))}
	empty := ocispec.DescriptorEmptyJSON
	for r := range repos {
		repo := fmt.Sprintf("team%d/app", r)
		for _, b := range [][]byte{base, empty.Data} {
			d := ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
			if err := c.UploadBlob(ctx, repo, d, bytes.NewReader(b)); err != nil {
				return nil, err
			}
		}
	}
	refs := make([]string, n)
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{Repo: fmt.Sprintf("team%d/app", i%repos), Tags: []string{fmt.Sprint("v", i)}}
	}
	err := forEach(ctx, items, 8, func(it Item) error {
		var i int
		fmt.Sscanf(it.Tags[0], "v%d", &i)
		refs[i] = "HOST/" + it.Repo + ":" + it.Tags[0]
		return pushSignedImage(ctx, c, it.Repo, it.Tags[0], i, baseDesc, empty)
	})
	return refs, err
}

func pushSignedImage(ctx context.Context, c *Client, repo, tag string, i int, base, empty ocispec.Descriptor) error {
	blob := func(mt string, data []byte) (ocispec.Descriptor, error) {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
		return d, c.UploadBlob(ctx, repo, d, bytes.NewReader(data))
	}
	manifest := func(m ocispec.Manifest, ref string) (ocispec.Descriptor, error) {
		m.Versioned, m.MediaType = specs.Versioned{SchemaVersion: 2}, ocispec.MediaTypeImageManifest
		data, err := json.Marshal(m)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if ref == "" {
			ref = d.Digest.String()
		}
		return d, c.PutManifest(ctx, repo, ref, d, data)
	}
	fallback := func(subject, referrer ocispec.Descriptor, artifactType string) error {
		referrer.ArtifactType = artifactType
		data, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{referrer}})
		if err != nil {
			return err
		}
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(data), Size: int64(len(data))}
		return c.PutManifest(ctx, repo, graph.FallbackTag(subject.Digest), d, data)
	}
	cfg, err := blob(ocispec.MediaTypeImageConfig, fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","image":%d}`, i))
	if err != nil {
		return err
	}
	unique, err := blob(ocispec.MediaTypeImageLayerGzip, bytes.Repeat(fmt.Appendf(nil, "layer %08d ", i), 8192/15))
	if err != nil {
		return err
	}
	img, err := manifest(ocispec.Manifest{Config: cfg, Layers: []ocispec.Descriptor{base, unique}}, tag)
	if err != nil {
		return err
	}
	sbomLayer, err := blob("application/spdx+json", fmt.Appendf(nil, `{"spdxVersion":"SPDX-2.3","name":"image %d"}`, i))
	if err != nil {
		return err
	}
	sbom, err := manifest(ocispec.Manifest{ArtifactType: "application/spdx+json", Config: empty, Layers: []ocispec.Descriptor{sbomLayer}, Subject: &img}, "")
	if err != nil {
		return err
	}
	sigLayer, err := blob("application/vnd.dev.sigstore.bundle.v0.3+json", fmt.Appendf(nil, `{"signature":"%d"}`, i))
	if err != nil {
		return err
	}
	sig, err := manifest(ocispec.Manifest{ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", Config: empty, Layers: []ocispec.Descriptor{sigLayer}, Subject: &sbom}, "")
	if err != nil {
		return err
	}
	if err := fallback(img, sbom, "application/spdx+json"); err != nil {
		return err
	}
	return fallback(sbom, sig, "application/vnd.dev.sigstore.bundle.v0.3+json")
}

// WriteScaleReport writes the rows as a Markdown table of per-image costs,
// regctl's copy loop beside bundle's export and import.
func WriteScaleReport(w io.Writer, rows []ScaleRow, started time.Time) error {
	fmt.Fprintf(w, "\n## Scale in images, %s\n\n", started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintln(w, "Tiny images (4 KiB shared base, 8 KiB own layer), each with an SBOM and a signature on the SBOM, in N/10 repositories of docker-registry 2.8 (fallback tags); all references on one command line. "+
		"The regctl loop is issue 16's peer: `regctl image copy --referrers --digest-tags SRC DST`, one process per image, one after the other, from the same source into a second empty registry; it exports and imports at once, hence both ratios (issue 16's target: import / regctl ≤ 0.5 at 1,000 images). "+
		"Requests counted by a proxy in front of each registry; regctl's are source + target.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| images | export | export planning | first blob on disk | export ms/image | export CPU ms/image | export peak RSS | export requests/image (fewest) | import | import ms/image | import CPU ms/image | import peak RSS | import requests/image (fewest) | tags checked | regctl loop | regctl CPU ms/image | regctl requests/image (source + target) | import / regctl | export+import / regctl |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	var notes []string
	for _, r := range rows {
		if r.Err != "" {
			fmt.Fprintf(w, "| %d | FAIL: %s ||||||||||||||||||\n", r.Images, strings.ReplaceAll(r.Err, "|", "/"))
			continue
		}
		per := func(d time.Duration) string {
			return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000/float64(r.Images))
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %.1f (%d) | %s | %s | %s | %s | %.1f (%d) | %d | %s |\n", r.Images,
			r.Export.Wall.Round(time.Millisecond), r.Planning.Round(time.Millisecond), r.FirstWrite.Round(time.Millisecond), per(r.Export.Wall), per(r.Export.CPU), humanBytes(r.Export.MaxRSS),
			float64(r.ExportRequests)/float64(r.Images), minExportRequests,
			r.Import.Wall.Round(time.Millisecond), per(r.Import.Wall), per(r.Import.CPU), humanBytes(r.Import.MaxRSS),
			float64(r.ImportRequests)/float64(r.Images), minImportRequests, r.TargetTags, regctlCells(r, per))
		switch l := r.Regctl; {
		case l.Skipped != "":
			notes = append(notes, fmt.Sprintf("%d images: regctl loop not run: %s", r.Images, l.Skipped))
		case l.Err != "":
			notes = append(notes, fmt.Sprintf("%d images: regctl loop failed: %s", r.Images, l.Err))
		default:
			notes = append(notes, fmt.Sprintf("%d images: after the regctl loop, %d tags checked; image v0's %s", r.Images, l.Tags, l.Referrers))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", strings.Join(strings.Fields(n), " "))
	}
	return nil
}

// regctlCells is a row's regctl columns: "not run" when it was skipped,
// FAIL when it failed (the notes say why).
func regctlCells(r ScaleRow, per func(time.Duration) string) string {
	l := r.Regctl
	switch {
	case l.Skipped != "":
		return "not run | not run | not run | not run | not run"
	case l.Err != "":
		return "FAIL | - | - | - | -"
	}
	ratio := func(d time.Duration) string {
		if l.Wall <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f×", d.Seconds()/l.Wall.Seconds())
	}
	n := float64(r.Images)
	return fmt.Sprintf("%s | %s | %.1f (%.1f + %.1f) | %s | %s", l.Wall.Round(time.Millisecond), per(l.CPU),
		float64(l.SourceRequests+l.TargetRequests)/n, float64(l.SourceRequests)/n, float64(l.TargetRequests)/n,
		ratio(r.Import.Wall), ratio(r.Export.Wall+r.Import.Wall))
}

package verify

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestInspectSeekableReadsOnlyMetadata(t *testing.T) {
	f := newFixture(t)
	amd := f.image(1, 3<<20, 2<<20)
	arm := f.image(2, 4<<20)
	idx := f.multi(map[string]ocispec.Descriptor{"linux/amd64": amd, "linux/arm64": arm})
	f.tag(idx, "src.example:5000/team/app:1.0")
	f.list(f.referrer(idx, "application/vnd.dev.sigstore.bundle.v0.3+json", 3))
	p := writeFile(t, t.TempDir(), "b.tar.zst", f.archive(layout.Zstd, false), false)

	inv, err := Inspect(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Seekable || inv.Compression != string(layout.Zstd) {
		t.Fatalf("seekable %v compression %q", inv.Seekable, inv.Compression)
	}
	if inv.BytesRead == 0 || inv.BytesRead*20 >= inv.ArchiveSize {
		t.Errorf("read %d of %d bytes, want under 5%%", inv.BytesRead, inv.ArchiveSize)
	}
	if len(inv.Images) != 1 || len(inv.Images[0].Children) != 2 || len(inv.Images[0].Referrers) != 1 {
		t.Fatalf("tree: %+v", inv.Images)
	}
}

func TestInspectBuildsTheSameTreeFromEveryKindOfBundle(t *testing.T) {
	f, s := standardFixture(t)
	dir := t.TempDir()
	paths := map[string]string{
		"tar":     writeFile(t, dir, "b.tar", f.archive(layout.None, false), false),
		"tar.gz":  writeFile(t, dir, "b.tar.gz", f.archive(layout.Gzip, true), false),
		"tar.zst": writeFile(t, dir, "b.tar.zst", f.archive(layout.Zstd, false), false),
		"dir":     writeDir(t, filepath.Join(dir, "unpacked"), f.entries(false)),
	}
	seekable := map[string]bool{"tar": true, "tar.zst": true, "dir": true}
	for name, p := range paths {
		t.Run(name, func(t *testing.T) {
			inv, err := Inspect(context.Background(), p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if inv.Seekable != seekable[name] {
				t.Errorf("seekable %v", inv.Seekable)
			}
			checkStandardTree(t, inv, s)
		})
	}
}

func checkStandardTree(t *testing.T, inv *Inventory, s standard) {
	t.Helper()
	if len(inv.Images) != 2 {
		t.Fatalf("%d images, want 2", len(inv.Images))
	}
	app, tool := inv.Images[0], inv.Images[1]
	if app.Reference != "src.example:5000/team/app:1.0" || tool.Reference != "src.example:5000/team/tool:2" {
		t.Errorf("references %q %q", app.Reference, tool.Reference)
	}
	if len(app.Children) != 2 || app.Children[0].Platform != "linux/amd64" || app.Children[0].Digest != s.amd.Digest.String() {
		t.Fatalf("app children: %+v", app.Children)
	}
	if len(app.Referrers) != 1 || app.Referrers[0].Digest != s.sig.Digest.String() ||
		app.Referrers[0].ArtifactType != "application/vnd.dev.sigstore.bundle.v0.3+json" ||
		app.Referrers[0].Annotations[ocispec.AnnotationCreated] == "" {
		t.Errorf("app referrers: %+v", app.Referrers)
	}
	// amd64 holds config + 1000 + 2000 byte layers plus its manifest.
	if want := s.amd.Size + 3000; app.Children[0].Size <= want {
		t.Errorf("amd64 size %d, want more than %d", app.Children[0].Size, want)
	}
	if app.Size <= app.Children[0].Size+app.Children[1].Size {
		t.Errorf("index size %d does not include its platforms", app.Size)
	}
	// tool shares the amd64 config and first layer.
	cfg := int64(len(`{"architecture":"amd64","os":"linux","seed":1}`))
	if inv.SharedBytes != 1000+cfg {
		t.Errorf("shared %d, want %d", inv.SharedBytes, 1000+cfg)
	}
	if inv.Blobs == 0 || inv.Bytes == 0 || inv.ArchiveSize == 0 || inv.BytesRead == 0 {
		t.Errorf("totals: %+v", inv)
	}
}

func writeDir(t *testing.T, dir string, entries []entry) string {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, e.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestInspectAttachesCosignTagsAndBuildxAttestations(t *testing.T) {
	f := newFixture(t)
	amd := f.image(1, 100)
	att := f.image(5, 50)
	att.Annotations = map[string]string{graph.AnnotationDockerRefType: graph.DockerRefTypeAttestation, graph.AnnotationDockerRefDigest: amd.Digest.String()}
	idx := f.multi(map[string]ocispec.Descriptor{"linux/amd64": amd, "unknown/unknown": att})
	f.tag(idx, "src.example:5000/app:1")
	sig := f.image(6, 10) // cosign's old scheme: no subject, only the tag
	f.tag(sig, "src.example:5000/app:"+graph.FallbackTag(idx.Digest)+".sig")
	p := writeFile(t, t.TempDir(), "b.tar", f.archive(layout.None, false), false)

	inv, err := Inspect(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Images) != 1 {
		t.Fatalf("%d images, want 1 (the signature is not an image)", len(inv.Images))
	}
	app := inv.Images[0]
	if len(app.Referrers) != 1 || !strings.HasSuffix(app.Referrers[0].Reference, ".sig") {
		t.Errorf("cosign signature not under its subject: %+v", app.Referrers)
	}
	if len(app.Children) != 1 || len(app.Children[0].Referrers) != 1 || app.Children[0].Referrers[0].Digest != att.Digest.String() {
		t.Errorf("attestation not under its platform: %+v", app.Children)
	}
	if got := app.Children[0].Referrers[0].Annotations[graph.AnnotationDockerRefType]; got != graph.DockerRefTypeAttestation {
		t.Errorf("attestation annotation %q", got)
	}
}

func TestInventoryWriteTextShowsTreeAndTotals(t *testing.T) {
	f, _ := standardFixture(t)
	inv, err := Inspect(context.Background(), "-", Options{Stdin: bytes.NewReader(f.archive(layout.Gzip, false))})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := inv.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"-: gzip, streamed", "src.example:5000/team/app:1.0  index", "  linux/amd64  manifest",
		"  referrer  application/vnd.dev.sigstore.bundle.v0.3+json", "2 images, ", "shared between images"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestInspectRefusesBrokenBundles(t *testing.T) {
	f, _ := standardFixture(t)
	f.noIndex = true
	dir := t.TempDir()
	for name, p := range map[string]string{
		"seekable without index": writeFile(t, dir, "a.tar", f.archive(layout.None, false), false),
		"stream without index":   writeFile(t, dir, "a.tar.gz", f.archive(layout.Gzip, false), false),
		"truncated stream":       writeFile(t, dir, "t.tar.gz", f.archive(layout.Gzip, false)[:2000], false),
		"missing file":           filepath.Join(dir, "nope.tar"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Inspect(context.Background(), p, Options{}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

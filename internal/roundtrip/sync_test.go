package roundtrip

import (
	"archive/tar"
	"context"
	"encoding/json"
	stdio "io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/spec"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/pack"
	"github.com/bundle-dev/bundle/unpack"
	"github.com/bundle-dev/bundle/verify"
)

// syncRepos are the five repositories of the story's spec.
var syncRepos = []string{"team/a", "team/b", "team/c", "team/d", "team/e"}

// TestThreeWeekSync is the recurring sync issue 13 describes. Week 1
// carries everything; in week 2 two images gain a tag sharing their base
// layers and one gains a signature; in week 3 one image changes a layer.
// Each incremental bundle holds only the new blobs, imports in order, and
// the target ends as a full sync's would; week 3 offered to a target that
// never got week 2 is refused before anything is pushed.
func TestThreeWeekSync(t *testing.T) {
	for _, dst := range kinds {
		t.Run(dst.name, func(t *testing.T) {
			t.Parallel()
			threeWeeks(t, dst.new)
		})
	}
}

func threeWeeks(t *testing.T, newTarget func(testing.TB) *testregistry.Registry) {
	ctx := context.Background()
	src := testregistry.NewDistribution(t)
	dir := t.TempDir()
	base := src.PushImage(t, "base/os", "1", testregistry.ImageSpec{Seed: 100, Layers: 2, LayerSize: 32 << 10})
	push := func(repo, tag string, seed int64) testregistry.Image {
		return src.PushImage(t, repo, tag, testregistry.ImageSpec{Seed: seed, Layers: 1, Shared: base.Layers})
	}
	for i, repo := range syncRepos {
		push(repo, "1.0.0", int64(1+i))
	}
	// d is signed from the start: week 2's signature joins this one in the
	// target's fallback tag index (or API listing), merged, not replaced.
	d0, _, _ := src.GetManifest(t, "team/d", "1.0.0")
	sig1 := src.PushReferrer(t, "team/d", d0, "application/vnd.example.sig", map[string]string{"week": "1"})
	// a and b follow a semver range; c, d, e are named.
	text := "version: 1\nimages:\n" +
		"  - ref: " + src.Host + "/team/a\n    tags: {semver: '>=1'}\n" +
		"  - ref: " + src.Host + "/team/b\n    tags: {semver: '>=1'}\n"
	for _, repo := range syncRepos[2:] {
		text += "  - " + src.Ref(repo, "1.0.0") + "\n"
	}
	images, err := spec.Parse("sync.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	export := func(name string, since ...string) (string, *pack.Report) {
		t.Helper()
		out := filepath.Join(dir, name)
		rep, err := pack.Export(ctx, nil, pack.Options{Output: out, CacheDir: filepath.Join(dir, "cache"), Images: images, Since: since, Remote: remote.Options{PlainHTTP: true}})
		if err != nil {
			t.Fatalf("export %s: %v", name, err)
		}
		return out, rep
	}
	target := newTarget(t)
	imp := func(reg *testregistry.Registry, bundle, receipt string) error {
		_, err := unpack.Import(ctx, bundle, unpack.Options{Target: reg.Host + "/mirror", Receipt: receipt, Remote: remote.Options{PlainHTTP: true}})
		return err
	}

	// Week 1: everything.
	w1, _ := export("week1.tar.zst")
	if err := imp(target, w1, filepath.Join(dir, "week1.receipt.json")); err != nil {
		t.Fatalf("import week 1: %v", err)
	}
	behind := newTarget(t) // gets week 1 and then, wrongly, week 3
	if err := imp(behind, w1, ""); err != nil {
		t.Fatalf("import week 1 into the second target: %v", err)
	}

	// Week 2: a and b gain 2.0.0 on the same base, d gains a signature.
	a2 := push("team/a", "2.0.0", 11)
	b2 := push("team/b", "2.0.0", 12)
	d1, _, _ := src.GetManifest(t, "team/d", "1.0.0")
	sig := src.PushReferrer(t, "team/d", d1, "application/vnd.example.sig", map[string]string{"week": "2"})
	w2, rep2 := export("week2.tar.zst", w1)
	want2 := []digest.Digest{a2.Config.Digest, a2.Layers[2].Digest, b2.Config.Digest, b2.Layers[2].Digest}
	// The signature's payload; its config is the empty config, which
	// week 1 carried with the first signature.
	want2 = append(want2, blobsOf(t, src, "team/d", sig)[1:]...)
	wantBlobs(t, w2, want2)
	if rep2.Plan.LeftOut == 0 || len(rep2.Plan.Bases) != 1 {
		t.Errorf("week 2 plan: %d left out, bases %v", rep2.Plan.LeftOut, rep2.Plan.Bases)
	}
	t.Logf("week 2: %d blobs carried, %d left out (%d bytes)", rep2.Plan.Blobs-rep2.Plan.Manifests, rep2.Plan.LeftOut, rep2.Plan.BytesLeftOut)
	checkIncremental(t, w2, rep2.Plan.LeftOut)
	if err := imp(target, w2, filepath.Join(dir, "week2.receipt.json")); err != nil {
		t.Fatalf("import week 2: %v", err)
	}

	// Week 3: c changes its top layer, under the same tag; the base is the
	// receipt the import of week 2 wrote.
	c3 := push("team/c", "1.0.0", 33)
	w3, _ := export("week3.tar.zst", filepath.Join(dir, "week2.receipt.json"))
	wantBlobs(t, w3, []digest.Digest{c3.Config.Digest, c3.Layers[2].Digest})

	// The target that missed week 2 refuses week 3 before any write.
	behind.ResetCounts()
	err = imp(behind, w3, "")
	if err == nil || !strings.Contains(err.Error(), "import the base bundle") || !strings.Contains(err.Error(), "nothing was pushed") {
		t.Errorf("importing week 3 without week 2: %v; want a refusal naming the base", err)
	}
	if n, m := behind.Count("PUT", ""), behind.Count("POST", ""); n+m != 0 {
		t.Errorf("the refused import made %d PUTs and %d POSTs, want none", n, m)
	}
	// Read as a stream (standard input), it is refused before any write too.
	f, err := os.Open(w3)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = unpack.Import(ctx, "-", unpack.Options{Target: behind.Host + "/mirror", Stdin: f, Remote: remote.Options{PlainHTTP: true}})
	if err == nil || !strings.Contains(err.Error(), "import the base bundle") {
		t.Errorf("importing week 3 from a stream without week 2: %v; want a refusal naming the base", err)
	}
	if n, m := behind.Count("PUT", ""), behind.Count("POST", ""); n+m != 0 {
		t.Errorf("the refused stream import made %d PUTs and %d POSTs, want none", n, m)
	}

	if err := imp(target, w3, ""); err != nil {
		t.Fatalf("import week 3: %v", err)
	}

	// A full sync of week 3's state into a fresh target.
	full := newTarget(t)
	wf, _ := export("full.tar.zst")
	if err := imp(full, wf, ""); err != nil {
		t.Fatalf("import the full sync: %v", err)
	}
	sameTargets(t, target, full, d1, sig1, sig)
}

// blobsOf lists the config and layers of manifest d in repo.
func blobsOf(t *testing.T, r *testregistry.Registry, repo string, d ocispec.Descriptor) []digest.Digest {
	t.Helper()
	_, raw, ok := r.GetManifest(t, repo, d.Digest.String())
	if !ok {
		t.Fatalf("%s@%s not found", repo, d.Digest)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// wantBlobs checks the bundle holds exactly these blobs besides its
// manifests.
func wantBlobs(t *testing.T, path string, want []digest.Digest) {
	t.Helper()
	b, err := verify.Open(context.Background(), path, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got []digest.Digest
	for d := range b.Present {
		if b.Graph.Node(d) == nil {
			got = append(got, d)
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds blobs %v, want %v", filepath.Base(path), got, want)
	}
}

// checkIncremental checks what verify and inspect say of an incremental
// bundle: absent blobs expected from the base, no error.
func checkIncremental(t *testing.T, path string, leftOut int) {
	t.Helper()
	rep, err := verify.Check(context.Background(), path, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fromBase := 0
	for _, p := range rep.Problems {
		if p.Code == "from-base" {
			fromBase++
		}
	}
	if !rep.OK || fromBase != leftOut {
		t.Errorf("verify %s: ok %v, %d from-base of %d left out; problems %+v", filepath.Base(path), rep.OK, fromBase, leftOut, rep.Problems)
	}
	inv, err := verify.Inspect(context.Background(), path, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Base == nil || inv.Base.LeftOut != leftOut {
		t.Errorf("inspect %s: base %+v, want %d left out", filepath.Base(path), inv.Base, leftOut)
	}
}

// sameTargets compares two targets: every tag's digest in every
// repository, and the referrers of the signed image.
func sameTargets(t *testing.T, got, want *testregistry.Registry, subject ocispec.Descriptor, sigs ...ocispec.Descriptor) {
	t.Helper()
	for _, repo := range syncRepos {
		r := "mirror/" + repo
		gt, wt := got.Tags(t, r), want.Tags(t, r)
		if !slices.Equal(gt, wt) {
			t.Errorf("%s: tags %v, a full sync has %v", r, gt, wt)
			continue
		}
		for _, tag := range wt {
			g, _, _ := got.GetManifest(t, r, tag)
			w, _, _ := want.GetManifest(t, r, tag)
			if g.Digest != w.Digest {
				t.Errorf("%s:%s is %s, a full sync has %s", r, tag, g.Digest, w.Digest)
			}
		}
	}
	list := func(reg *testregistry.Registry) map[digest.Digest]bool {
		out := map[digest.Digest]bool{}
		for _, d := range reg.ListReferrers(t, "mirror/team/d", subject.Digest) {
			out[d.Digest] = true
		}
		return out
	}
	g, w := list(got), list(want)
	if !maps.Equal(g, w) {
		t.Errorf("referrers of team/d: %v, a full sync has %v", g, w)
	}
	for _, sig := range sigs {
		if !g[sig.Digest] {
			t.Errorf("referrers of team/d: %v, want %s among them", g, sig.Digest)
		}
	}
}

// TestIncrementalMountsLeftOutBlobsFromAnotherRepository: a new image in
// a new repository shares base layers that the base carried for another
// image of the bundle. The target has them, under the other repository:
// the import mounts them rather than refusing. (A blob is left out only
// for a repository the base had it in: otherwise the importer could not
// know where on the target to look.)
func TestIncrementalMountsLeftOutBlobsFromAnotherRepository(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "file", true: "stream"}[stream], func(t *testing.T) {
			mountLeftOut(t, stream)
		})
	}
}

func mountLeftOut(t *testing.T, stream bool) {
	ctx := context.Background()
	src := testregistry.NewDistribution(t)
	dst := testregistry.NewDistribution(t)
	dir := t.TempDir()
	base := src.PushImage(t, "base/os", "1", testregistry.ImageSpec{Seed: 200, Layers: 2})
	src.PushImage(t, "team/a", "1", testregistry.ImageSpec{Seed: 201, Layers: 1, Shared: base.Layers})
	opts := func(out string, since ...string) pack.Options {
		return pack.Options{Output: filepath.Join(dir, out), CacheDir: filepath.Join(dir, "cache"), Since: since, Remote: remote.Options{PlainHTTP: true}}
	}
	o1 := opts("w1.tar")
	if _, err := pack.Export(ctx, []string{src.Ref("team/a", "1")}, o1); err != nil {
		t.Fatal(err)
	}
	io := unpack.Options{Target: dst.Host, Remote: remote.Options{PlainHTTP: true}}
	if _, err := unpack.Import(ctx, o1.Output, io); err != nil {
		t.Fatal(err)
	}
	f := src.PushImage(t, "team/f", "1", testregistry.ImageSpec{Seed: 202, Layers: 1, Shared: base.Layers})
	o2 := opts("w2.tar", o1.Output)
	rep, err := pack.Export(ctx, []string{src.Ref("team/a", "1"), src.Ref("team/f", "1")}, o2)
	if err != nil {
		t.Fatal(err)
	}
	// a's config and layer, and the base layers a and f share: held by
	// team/a, which needs them still.
	if rep.Plan.LeftOut != 4 {
		t.Errorf("%d blobs left out, want 4", rep.Plan.LeftOut)
	}
	file := o2.Output
	if stream {
		r, err := os.Open(o2.Output)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		file, io.Stdin = "-", r
	}
	ir, err := unpack.Import(ctx, file, io)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if got, _, ok := dst.GetManifest(t, "team/f", "1"); !ok || got.Digest != f.Desc.Digest {
		t.Errorf("team/f:1 on the target: %v %s, want %s", ok, got.Digest, f.Desc.Digest)
	}
	if ir.Mounted != 2 {
		t.Errorf("%d blobs mounted, want the 2 base layers", ir.Mounted)
	}
}

// TestVerifyTellsALeftOutBlobFromAHole: an incremental bundle that lost a
// blob its base does not account for is damaged, and import refuses it
// before pushing.
func TestVerifyTellsALeftOutBlobFromAHole(t *testing.T) {
	ctx := context.Background()
	src := testregistry.NewDistribution(t)
	dir := t.TempDir()
	base := src.PushImage(t, "base/os", "1", testregistry.ImageSpec{Seed: 300, Layers: 2})
	src.PushImage(t, "team/a", "1", testregistry.ImageSpec{Seed: 301, Layers: 1, Shared: base.Layers})
	o := pack.Options{Output: filepath.Join(dir, "w1.tar"), CacheDir: filepath.Join(dir, "cache"), Remote: remote.Options{PlainHTTP: true}}
	if _, err := pack.Export(ctx, []string{src.Ref("team/a", "1")}, o); err != nil {
		t.Fatal(err)
	}
	b2 := src.PushImage(t, "team/a", "2", testregistry.ImageSpec{Seed: 302, Layers: 1, Shared: base.Layers})
	o2 := o
	o2.Output, o2.Since = filepath.Join(dir, "w2.tar"), []string{o.Output}
	if _, err := pack.Export(ctx, []string{src.Ref("team/a", "2")}, o2); err != nil {
		t.Fatal(err)
	}
	holed := filepath.Join(dir, "holed.tar")
	dropEntry(t, o2.Output, holed, "blobs/"+strings.Replace(b2.Layers[2].Digest.String(), ":", "/", 1))
	rep, err := verify.Check(ctx, holed, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, p := range rep.Problems {
		codes[p.Code] = true
	}
	if rep.OK || !codes["base-mismatch"] || !codes["missing-blob"] {
		t.Errorf("verify of a holed incremental bundle: ok %v, problems %+v; want base-mismatch and missing-blob", rep.OK, rep.Problems)
	}
	dst := testregistry.NewDistribution(t)
	_, err = unpack.Import(ctx, holed, unpack.Options{Target: dst.Host, Remote: remote.Options{PlainHTTP: true}})
	if err == nil || !strings.Contains(err.Error(), "nothing was pushed") {
		t.Errorf("import of a holed incremental bundle: %v", err)
	}
	if n := dst.Count("PUT", "") + dst.Count("POST", ""); n != 0 {
		t.Errorf("%d writes to the target", n)
	}
}

// dropEntry copies the plain tar in to out without the entry name; the
// .sha256 beside it is not copied.
func dropEntry(t *testing.T, in, out, name string) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tr, tw := tar.NewReader(f), tar.NewWriter(g)
	dropped := false
	for {
		h, err := tr.Next()
		if err == stdio.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			dropped = true
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := stdio.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !dropped {
		t.Fatalf("%s has no entry %s", in, name)
	}
}

package unpack

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
)

var registries = []struct {
	name string
	new  func(testing.TB) *testregistry.Registry
}{
	{"distribution", testregistry.NewDistribution},
	{"referrersAPI", testregistry.NewReferrersAPI},
}

func forEachRegistry(t *testing.T, fn func(t *testing.T, reg *testregistry.Registry)) {
	for _, r := range registries {
		t.Run(r.name, func(t *testing.T) { fn(t, r.new(t)) })
	}
}

func mustHave(t *testing.T, reg *testregistry.Registry, repo, ref string, want digest.Digest) {
	t.Helper()
	d, _, ok := reg.GetManifest(t, repo, ref)
	if !ok {
		t.Fatalf("%s:%s is not on the target", repo, ref)
	}
	if want != "" && d.Digest != want {
		t.Fatalf("%s:%s is %s, want %s", repo, ref, d.Digest, want)
	}
}

func TestImportLandsImagesWithTheirTagsAndDigests(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testregistry.Registry) {
		f := newFixture(t)
		single := f.image(1, 2, 1024)
		f.name(single, "src:5000/team/app:1.0")
		idx, children := f.index(2, "linux/amd64", "linux/arm64", "linux/s390x")
		f.name(idx, "src:5000/team/multi:2.0")
		rep, err, _ := importTo(t, t.Context(), f.file("b.tar", writeOpts{}), reg.Host, nil)
		if err != nil {
			t.Fatal(err)
		}
		mustHave(t, reg, "team/app", "1.0", single.Digest)
		mustHave(t, reg, "team/multi", "2.0", idx.Digest)
		for _, c := range children {
			mustHave(t, reg, "team/multi", c.Digest.String(), c.Digest)
		}
		if len(rep.Images) != 2 || !rep.Images[0].Pushed || !rep.Images[1].Pushed || rep.Tags != 2 {
			t.Fatalf("report %+v", rep)
		}
		if rep.Uploaded != 2+1+3*2 {
			t.Fatalf("uploaded %d blobs, want 9", rep.Uploaded)
		}
	})
}

func TestImportMapsRepositoriesUnderThePrefix(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	f := newFixture(t)
	img := f.image(3, 1, 64)
	f.name(img, "src:5000/team/app:1.0")
	rep, err, _ := importTo(t, t.Context(), f.file("b.tar", writeOpts{}), reg.Host+"/mirror/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	mustHave(t, reg, "mirror/x/team/app", "1.0", img.Digest)
	if want := reg.Host + "/mirror/x/team/app:1.0"; rep.Images[0].Target != want {
		t.Fatalf("target %q, want %q", rep.Images[0].Target, want)
	}
}

func TestImportPlacesReferrerTreesAsTheModeSays(t *testing.T) {
	for _, mode := range []string{"auto", "tag"} {
		t.Run(mode, func(t *testing.T) {
			forEachRegistry(t, func(t *testing.T, reg *testregistry.Registry) {
				f := newFixture(t)
				img := f.image(4, 1, 64)
				f.name(img, "src:5000/team/app:1.0")
				sig := f.referrer(img, "application/vnd.dev.sigstore.bundle.v0.3+json", 1)
				sbom := f.referrer(img, "application/spdx+json", 2)
				sbomSig := f.referrer(sbom, "application/vnd.dev.sigstore.bundle.v0.3+json", 3)
				sigOfSig := f.referrer(sbomSig, "application/vnd.example.countersign", 4)
				rep, err, _ := importTo(t, t.Context(), f.file("b.tar", writeOpts{}), reg.Host, func(o *Options) { o.ReferrersMode = mode })
				if err != nil {
					t.Fatal(err)
				}
				wantMode := "tag"
				if mode == "auto" && reg.HasReferrersAPI() {
					wantMode = "api"
				}
				if rep.ReferrersMode != wantMode {
					t.Fatalf("mode %q, want %q", rep.ReferrersMode, wantMode)
				}
				for subject, want := range map[digest.Digest][]digest.Digest{
					img.Digest: {sig.Digest, sbom.Digest}, sbom.Digest: {sbomSig.Digest}, sbomSig.Digest: {sigOfSig.Digest},
				} {
					got := reg.ListReferrers(t, "team/app", subject)
					if !sameSet(digests(got), want) {
						t.Fatalf("referrers of %s: %v, want %v", subject, digests(got), want)
					}
				}
				if wantMode == "tag" {
					mustHave(t, reg, "team/app", graph.FallbackTag(img.Digest), "")
				}
				if rep.Referrers != 4 || rep.Images[0].Referrers != 4 {
					t.Fatalf("referrers counted %d / %d, want 4", rep.Referrers, rep.Images[0].Referrers)
				}
			})
		})
	}
}

func TestImportMergesForeignFallbackEntry(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	f := newFixture(t)
	img := f.image(5, 1, 64)
	f.name(img, "src:5000/team/app:1.0")
	sig := f.referrer(img, "application/vnd.dev.sigstore.bundle.v0.3+json", 1)
	// The target already has the image and someone else's referrer on it.
	file := f.file("b.tar", writeOpts{})
	if _, err, _ := importTo(t, t.Context(), file, reg.Host, func(o *Options) { o.ReferrersMode = "tag" }); err != nil {
		t.Fatal(err)
	}
	foreign := reg.PushReferrer(t, "team/app", img, "application/vnd.foreign", nil)
	if _, err, _ := importTo(t, t.Context(), file, reg.Host, func(o *Options) { o.ReferrersMode = "tag" }); err != nil {
		t.Fatal(err)
	}
	got := digests(reg.ListReferrers(t, "team/app", img.Digest))
	if !sameSet(got, []digest.Digest{sig.Digest, foreign.Digest}) {
		t.Fatalf("fallback index lists %v, want ours and the foreign one", got)
	}
}

func TestImportTwiceUploadsNothingTheSecondTime(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testregistry.Registry) {
		f := newFixture(t)
		img := f.image(6, 3, 2048)
		f.name(img, "src:5000/team/app:1.0")
		f.referrer(img, "application/spdx+json", 1)
		file := f.file("b.tar.zst", writeOpts{comp: layout.Zstd})
		if _, err, _ := importTo(t, t.Context(), file, reg.Host, nil); err != nil {
			t.Fatal(err)
		}
		reg.ResetCounts()
		rep, err, _ := importTo(t, t.Context(), file, reg.Host, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := reg.Count("", "upload"); n != 0 || rep.Uploaded != 0 {
			t.Fatalf("second import made %d upload requests, reported %d uploads", n, rep.Uploaded)
		}
		if rep.Skipped != 3+1+2 {
			t.Fatalf("skipped %d, want 6", rep.Skipped)
		}
	})
}

// cancelAfter cancels the import once n blobs have finished.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
	done   chan struct{}
}

func (c *cancelAfter) Start(string, string, int64) {}
func (c *cancelAfter) Add(string, int64)           {}
func (c *cancelAfter) Done(_ string, _ bool, err error) {
	if err == nil {
		c.done <- struct{}{}
		if len(c.done) >= c.n {
			c.cancel()
		}
	}
}

func TestImportResumesWithoutUploadingABlobTwice(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testregistry.Registry) {
		f := newFixture(t)
		img := f.image(7, 8, 4096)
		f.name(img, "src:5000/team/app:1.0")
		file := f.file("b.tar", writeOpts{})
		ctx, cancel := context.WithCancel(t.Context())
		stop := &cancelAfter{n: 3, cancel: cancel, done: make(chan struct{}, 100)}
		first, err, _ := importTo(t, ctx, file, reg.Host, func(o *Options) { o.Progress = stop; o.Concurrency = 1 })
		if err == nil {
			t.Fatal("the cancelled import succeeded")
		}
		if _, _, ok := reg.GetManifest(t, "team/app", "1.0"); ok {
			t.Fatal("the cancelled import pushed the manifest")
		}
		second, err, _ := importTo(t, t.Context(), file, reg.Host, nil)
		if err != nil {
			t.Fatal(err)
		}
		mustHave(t, reg, "team/app", "1.0", img.Digest)
		if first.Uploaded+second.Uploaded != 9 || second.Skipped != first.Uploaded || first.Uploaded < 3 {
			t.Fatalf("uploads: first %d, second %d (skipped %d), want 9 in all with none twice", first.Uploaded, second.Uploaded, second.Skipped)
		}
	})
}

func TestImportStopsOnlyTheImageOfACorruptBlob(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testregistry.Registry) {
		f := newFixture(t)
		bad := f.image(8, 1, 4096)
		good := f.image(9, 1, 4096)
		f.name(bad, "src:5000/team/bad:1.0")
		f.name(good, "src:5000/team/good:1.0")
		var m ocispec.Manifest
		mustUnmarshal(t, f.blobs[bad.Digest], &m)
		for _, o := range []writeOpts{{}, {comp: layout.Gzip}} {
			file := f.file("b.tar", writeOpts{corrupt: m.Layers[0].Digest, comp: o.comp})
			rep, err, _ := importTo(t, t.Context(), file, reg.Host, nil)
			if err == nil || !strings.Contains(err.Error(), m.Layers[0].Digest.String()) {
				t.Fatalf("error %v does not name the corrupt blob", err)
			}
			if _, _, ok := reg.GetManifest(t, "team/bad", bad.Digest.String()); ok {
				t.Fatal("the manifest of the corrupt image was pushed")
			}
			mustHave(t, reg, "team/good", "1.0", good.Digest)
			if len(rep.Failed) != 1 || rep.Images[0].Error == "" || rep.Images[1].Error != "" {
				t.Fatalf("report: %+v", rep)
			}
		}
	})
}

func TestImportReadsEveryKindOfSource(t *testing.T) {
	reg := testregistry.NewDistribution(t)
	f := newFixture(t)
	img := f.image(10, 2, 1024)
	f.name(img, "src:5000/team/app:1.0")
	f.referrer(img, "application/spdx+json", 1)
	for _, tc := range []struct {
		name  string
		file  func() string
		stdin []byte
	}{
		{"stdin tar.gz", func() string { return "-" }, f.bytes(writeOpts{comp: layout.Gzip})},
		{"directory", f.dir, nil},
		{"index.json last", func() string { return f.file("b.tar.gz", writeOpts{comp: layout.Gzip, indexLast: true}) }, nil},
		{"stdin index.json last", func() string { return "-" }, f.bytes(writeOpts{indexLast: true})},
		{"zstd", func() string { return f.file("b.tar.zst", writeOpts{comp: layout.Zstd}) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "t/" + strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), ".", "-")
			rep, err, notices := importTo(t, t.Context(), tc.file(), reg.Host+"/"+repo, func(o *Options) { o.Stdin = bytes.NewReader(tc.stdin) })
			if err != nil {
				t.Fatal(err)
			}
			// A file in another tool's order is read twice; only a
			// stream from stdin is spooled.
			spooled := strings.Contains(strings.Join(notices, "\n"), "spooling")
			if spooled != (strings.Contains(tc.name, "last") && strings.HasPrefix(tc.name, "stdin")) {
				t.Fatalf("spooled %v; notices %q", spooled, notices)
			}
			mustHave(t, reg, repo+"/team/app", "1.0", img.Digest)
			if rep.Uploaded != 2+1+2 || rep.Referrers != 1 {
				t.Fatalf("uploaded %d, referrers %d", rep.Uploaded, rep.Referrers)
			}
		})
	}
}

func TestImportMountsABlobSharedByTwoRepositories(t *testing.T) {
	for _, stdin := range []bool{false, true} {
		reg := testregistry.NewDistribution(t)
		f := newFixture(t)
		base := f.add(ocispec.MediaTypeImageLayer, randomData(99, 8192), 2)
		a := f.image(11, 0, 0, base)
		b := f.image(12, 0, 0, base)
		f.name(a, "src:5000/team/a:1")
		f.name(b, "src:5000/team/b:1")
		file, in := f.file("b.tar", writeOpts{}), []byte(nil)
		if stdin {
			file, in = "-", f.bytes(writeOpts{})
		}
		rep, err, _ := importTo(t, t.Context(), file, reg.Host, func(o *Options) { o.Stdin = bytes.NewReader(in) })
		if err != nil {
			t.Fatal(err)
		}
		// configs differ: 2 uploads; the base layer: 1 upload + 1 mount.
		if rep.Uploaded != 3 || rep.Mounted != 1 {
			t.Fatalf("stdin %v: uploaded %d, mounted %d; want 3 and 1", stdin, rep.Uploaded, rep.Mounted)
		}
		mustHave(t, reg, "team/a", "1", a.Digest)
		mustHave(t, reg, "team/b", "1", b.Digest)
	}
}

func TestImportDryRunPushesNothing(t *testing.T) {
	forEachRegistry(t, func(t *testing.T, reg *testregistry.Registry) {
		f := newFixture(t)
		img := f.image(13, 2, 512)
		f.name(img, "src:5000/team/app:1.0")
		f.referrer(img, "application/spdx+json", 1)
		rep, err, notices := importTo(t, t.Context(), f.file("b.tar", writeOpts{}), reg.Host, func(o *Options) { o.DryRun = true })
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"upload", "manifest"} {
			if n := reg.Count("PUT", kind) + reg.Count("POST", kind); n != 0 {
				t.Fatalf("dry run made %d %s writes", n, kind)
			}
		}
		if rep.Images[0].Pushed || rep.Images[0].Target != reg.Host+"/team/app:1.0" || rep.Referrers != 1 {
			t.Fatalf("report %+v", rep)
		}
		if !strings.Contains(strings.Join(notices, "\n"), img.Digest.String()) {
			t.Fatalf("notices do not list the image digest: %q", notices)
		}
	})
}

func TestImportSparseIndex(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		wantErr string
		check   func(t *testing.T, reg *testregistry.Registry, kept ocispec.Descriptor)
	}{
		{"", "--sparse-index", nil},
		{"single", "", func(t *testing.T, reg *testregistry.Registry, kept ocispec.Descriptor) {
			mustHave(t, reg, "team/multi", "1.0", kept.Digest)
		}},
		{"rewrite", "", func(t *testing.T, reg *testregistry.Registry, kept ocispec.Descriptor) {
			_, raw, ok := reg.GetManifest(t, "team/multi", "1.0")
			if !ok {
				t.Fatal("no tag")
			}
			var idx ocispec.Index
			mustUnmarshal(t, raw, &idx)
			if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != kept.Digest {
				t.Fatalf("rewritten index lists %v", idx.Manifests)
			}
		}},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			reg := testregistry.NewDistribution(t)
			f := newFixture(t)
			idx, children := f.index(14, "linux/amd64", "linux/arm64")
			f.name(idx, "src:5000/team/multi:1.0")
			f.drop(children[1].Digest)
			rep, err, notices := importTo(t, t.Context(), f.file("b.tar", writeOpts{}), reg.Host, func(o *Options) { o.SparseIndex = tc.mode })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), idx.Digest.String()) {
					t.Fatalf("error %v, want one naming the index and suggesting %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, reg, children[0])
			if !strings.Contains(strings.Join(notices, "\n"), "signatures on the original index no longer apply") || !rep.Images[0].Pushed {
				t.Fatalf("notices %q, report %+v", notices, rep)
			}
		})
	}
}

func TestImportRefusesBadTargets(t *testing.T) {
	f := newFixture(t)
	f.name(f.image(15, 1, 16), "src:5000/team/app:1.0")
	file := f.file("b.tar", writeOpts{})
	for _, target := range []string{"", "http://x", "UPPER:5000/x"} {
		if _, err, _ := importTo(t, t.Context(), file, target, nil); err == nil {
			t.Errorf("target %q accepted", target)
		}
	}
	if _, err, _ := importTo(t, t.Context(), filepathNotThere(t), "127.0.0.1:1", nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func filepathNotThere(t *testing.T) string { return t.TempDir() + "/none.tar" }

func digests(ds []ocispec.Descriptor) []digest.Digest {
	var out []digest.Digest
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	return out
}

func sameSet(a, b []digest.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[digest.Digest]bool{}
	for _, d := range a {
		m[d] = true
	}
	for _, d := range b {
		if !m[d] {
			return false
		}
	}
	return true
}

package pack

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/internal/spec"
	"github.com/bundle-dev/bundle/internal/testregistry"
)

func TestExportSelectsTagsFromTheTagList(t *testing.T) {
	r := testregistry.NewDistribution(t)
	for i, tag := range []string{"1.23.4", "1.24.0", "1.24.1", "1.25.0-rc.1", "1.25.0", "latest"} {
		r.PushImage(t, "team/app", tag, testregistry.ImageSpec{Seed: int64(10 + i)})
	}
	repo := r.Ref("team/app", "")
	repo = strings.TrimSuffix(repo, ":")
	for _, tc := range []struct {
		name, rule string
		want       []string
		wantErr    string
	}{
		{"semver range", "{semver: '>=1.24 <1.26'}", []string{"1.25.0", "1.24.1", "1.24.0"}, ""},
		{"newest of a range", "{semver: '>=1.24 <1.26', newest: 1}", []string{"1.25.0"}, ""},
		{"regex", `{regex: '^1\.2[34]\.'}`, []string{"1.24.1", "1.24.0", "1.23.4"}, ""},
		{"nothing matches", "{semver: '>=2'}", nil, "no tag of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imgs, err := spec.Parse("s.yaml", []byte("images:\n  - ref: "+repo+"\n    tags: "+tc.rule+"\n  - "+r.Ref("team/app", "latest")+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			opts := testOptions(t, "b.tar")
			opts.Images = imgs
			rep, err := Export(context.Background(), nil, opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "s.yaml:2:") {
					t.Fatalf("got %v, want an error naming s.yaml:2 and %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, im := range rep.Images {
				got = append(got, im.Reference[strings.LastIndex(im.Reference, ":")+1:])
			}
			want := append(slices.Clone(tc.want), "latest")
			if !slices.Equal(got, want) {
				t.Errorf("exported tags %v, want %v", got, want)
			}
			if len(rep.Plan.Selections) != 1 || !slices.Equal(rep.Plan.Selections[0].Tags, tc.want) {
				t.Errorf("the plan's selections %+v, want %v", rep.Plan.Selections, tc.want)
			}
		})
	}
}

func TestExportNothingMatchingIsANoticeWithAllowEmpty(t *testing.T) {
	r := testregistry.NewDistribution(t)
	r.PushImage(t, "team/app", "1.0.0", testregistry.ImageSpec{Seed: 1})
	imgs, err := spec.Parse("s.yaml", []byte("images:\n  - ref: "+strings.TrimSuffix(r.Ref("team/app", ""), ":")+"\n    tags: {semver: '>=2'}\n  - "+r.Ref("team/app", "1.0.0")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, "b.tar")
	opts.Images, opts.AllowEmpty = imgs, true
	var notices []string
	opts.Notice = func(f string, a ...any) { notices = append(notices, f) }
	rep, err := Export(context.Background(), nil, opts)
	if err != nil || len(rep.Images) != 1 || len(notices) == 0 {
		t.Fatalf("got %v, %v, notices %v; want one image and a notice", rep, err, notices)
	}
}

func TestExportAppliesEachEntrysOptions(t *testing.T) {
	r := testregistry.NewDistribution(t)
	a := r.PushImage(t, "team/a", "1", testregistry.ImageSpec{Seed: 1})
	b := r.PushImage(t, "team/b", "1", testregistry.ImageSpec{Seed: 2})
	sigA := r.PushReferrer(t, "team/a", a.Desc, "application/vnd.example.sig", nil)
	sigB := r.PushReferrer(t, "team/b", b.Desc, "application/vnd.example.sig", nil)
	imgs, err := spec.Parse("s.yaml", []byte("images:\n  - "+r.Ref("team/a", "1")+"\n  - ref: "+r.Ref("team/b", "1")+"\n    referrers: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, "b.tar")
	opts.Images = imgs
	if _, err := Export(context.Background(), nil, opts); err != nil {
		t.Fatal(err)
	}
	arch := readArchive(t, opts.Output)
	if _, ok := arch.blobs[sigA.Digest]; !ok {
		t.Errorf("a's referrer is missing")
	}
	if _, ok := arch.blobs[sigB.Digest]; ok {
		t.Errorf("b's referrer travelled although its entry says referrers: false")
	}
}

// TestTagSelectionReadsEveryPage: the newest tags may be on the last page.
func TestTagSelectionReadsEveryPage(t *testing.T) {
	r := testregistry.NewDistribution(t)
	tags := []string{"1.23.4", "1.24.0", "1.24.1", "1.25.0-rc.1", "1.25.0", "latest"}
	for i, tag := range tags {
		r.PushImage(t, "team/app", tag, testregistry.ImageSpec{Seed: int64(20 + i)})
	}
	imgs, err := spec.Parse("s.yaml", []byte("images:\n  - ref: "+r.Host+"/team/app\n    tags: {semver: '>=1.24', newest: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, "b.tar")
	_, client := opts.Remote.Connect(context.Background())
	r.ResetCounts()
	sel, err := selectTags(context.Background(), client, imgs[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sel.Tags, []string{"1.25.0", "1.24.1"}) {
		t.Errorf("selected %v, want [1.25.0 1.24.1]", sel.Tags)
	}
	if n := r.Count("GET", "tags"); n < 3 {
		t.Errorf("%d tag list requests for 6 tags 2 a page, want 3 or more", n)
	}
}

package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseReadsEntriesAndDefaults(t *testing.T) {
	src := `version: 1
defaults:
  platforms: [linux/amd64]
  cosign: false
images:
  - registry.example/team/app:1.0
  - ref: registry.example/team/api
    tags:
      semver: ">=1.24 <1.26"
      newest: 2
    platforms: [linux/arm64]
    referrers: false
`
	imgs, err := Parse("bundle.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		t.Fatalf("got %d images", len(imgs))
	}
	a, b := imgs[0], imgs[1]
	if a.Ref != "registry.example/team/app:1.0" || a.Tags != nil || !slices.Equal(a.Opts.Platforms, []string{"linux/amd64"}) || *a.Opts.Cosign {
		t.Errorf("first entry: %+v", a)
	}
	if a.Pos.Line != 6 || a.Pos.Column != 5 {
		t.Errorf("first entry at %s, want line 6 column 5", a.Pos)
	}
	if b.Tags == nil || b.Tags.Newest != 2 || b.Tags.SemverRaw != ">=1.24 <1.26" || !slices.Equal(b.Opts.Platforms, []string{"linux/arm64"}) || *b.Opts.Referrers || *b.Opts.Cosign {
		t.Errorf("second entry: %+v %+v", b, b.Tags)
	}
}

func TestParseErrorsNameLineAndColumn(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line, col int
		want      string
	}{
		{"unknown top key", "images: [a/b]\nimagez: []\n", 2, 1, `unknown key "imagez"`},
		{"unknown entry key", "images:\n  - ref: a/b\n    platfroms: [linux/amd64]\n", 3, 5, `unknown key "platfroms"`},
		{"unknown tags key", "images:\n  - ref: a/b\n    tags: {semvar: '1'}\n", 3, 12, `unknown key "semvar"`},
		{"bad semver range", "images:\n  - ref: a/b\n    tags:\n      semver: '>=1.x.y <'\n", 4, 15, "semver range"},
		{"bad regex", "images:\n  - ref: a/b\n    tags:\n      regex: '^1.(['\n", 4, 14, "does not compile"},
		{"newest zero", "images:\n  - ref: a/b\n    tags: {newest: 0}\n", 3, 20, "want 1 or more"},
		{"tag with selection", "images:\n  - ref: a/b:1.0\n    tags: {regex: x}\n", 2, 10, "give the repository only"},
		{"bad reference", "images:\n  - ref: A/B\n", 2, 10, "not an image reference"},
		{"no ref", "images:\n  - platforms: [linux/amd64]\n", 2, 5, `without "ref"`},
		{"bad platform", "defaults:\n  platforms: [linux/amd64, '']\nimages: [a/b]\n", 2, 28, "platform"},
		{"bad bool", "images:\n  - ref: a/b\n    cosign: maybe\n", 3, 13, "true or false"},
		{"version", "version: 2\nimages: [a/b]\n", 1, 10, "version 2"},
		{"repeated key", "images: [a/b]\nimages: [c/d]\n", 2, 1, "given twice"},
		{"no images", "version: 1\n", 1, 1, "no images"},
		{"syntax", "images:\n\t- a/b\n", 2, 1, "not valid YAML"},
		{"not a list", "images: a/b\n", 1, 9, "want a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("b.yaml", []byte(tc.src))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if se.Pos.Line != tc.line || (tc.col != 0 && se.Pos.Column != tc.col) || !strings.Contains(se.Msg, tc.want) {
				t.Errorf("got %v, want b.yaml:%d:%d: ...%s...", err, tc.line, tc.col, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "b.yaml:") {
				t.Errorf("%v does not start with the file name", err)
			}
		})
	}
}

func TestLoadRefusesConflictingDuplicates(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	os.WriteFile(a, []byte("images:\n  - ref: reg.example/app:1.0\n    platforms: [linux/amd64]\n"), 0o644)
	os.WriteFile(b, []byte("images:\n  - reg.example/other:1\n  - ref: reg.example/app:1.0\n    platforms: [linux/arm64]\n"), 0o644)
	_, err := Load(a, b)
	var se *Error
	if !errors.As(err, &se) || se.Pos.File != b || se.Pos.Line != 3 || !strings.Contains(se.Msg, a+":2:5") {
		t.Fatalf("got %v, want an error at %s:3 naming %s:2:5", err, b, a)
	}
	// The same entry twice, with the same options, is one entry.
	os.WriteFile(b, []byte("images:\n  - ref: reg.example/app:1.0\n    platforms: [linux/amd64]\n"), 0o644)
	imgs, err := Load(a, b)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("got %v, %v; want one entry", imgs, err)
	}
}

func TestParseList(t *testing.T) {
	imgs, err := ParseList("list.txt", []byte("# mirror\nreg.example/a:1\n\n  reg.example/b@sha256:"+strings.Repeat("a", 64)+"  # pinned\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[1].Pos.Line != 4 || imgs[1].Pos.Column != 3 {
		t.Fatalf("got %+v", imgs)
	}
	_, err = ParseList("list.txt", []byte("reg.example/a:1\nreg.example/a b\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "list.txt:2:1:") {
		t.Fatalf("got %v, want list.txt:2:1", err)
	}
	_, err = ParseList("list.txt", []byte("\n  Reg/A\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "list.txt:2:3:") {
		t.Fatalf("got %v, want list.txt:2:3", err)
	}
}

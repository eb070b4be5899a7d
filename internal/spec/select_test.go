package spec

import (
	"slices"
	"testing"
)

func TestSelectTags(t *testing.T) {
	tags := []string{"1.23.4", "1.24.0", "1.24.1", "1.25.0-rc.1", "1.25.0", "latest"}
	for _, tc := range []struct {
		name, rule string
		want       []string
	}{
		{"semver range", "semver: '>=1.24 <1.26'", []string{"1.25.0", "1.24.1", "1.24.0"}},
		{"semver newest", "semver: '>=1.24 <1.26', newest: 2", []string{"1.25.0", "1.24.1"}},
		{"prerelease by range", "semver: '>=1.25.0-rc.0'", []string{"1.25.0", "1.25.0-rc.1"}},
		{"regex", `regex: '^1\.24\.'`, []string{"1.24.1", "1.24.0"}},
		{"regex and semver", `regex: '^1\.2[45]\.', semver: '<1.25'`, []string{"1.24.1", "1.24.0"}},
		{"newest only", "newest: 1", []string{"1.25.0"}},
		{"non-versions last", "regex: 'latest|^1.23'", []string{"1.23.4", "latest"}},
		{"nothing", "semver: '>=2'", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imgs, err := Parse("s.yaml", []byte("images:\n  - ref: reg.example/app\n    tags: {"+tc.rule+"}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := imgs[0].Tags.Select(tags); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

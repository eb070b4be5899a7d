package bench

import "testing"

func TestLayoutNameIsAPlainName(t *testing.T) {
	for ref, want := range map[string]string{
		"bench/app00:1.0":  "bench_app00-1.0",
		"app:latest":       "app-latest",
		"a/b/c:v1.2.3-rc1": "a_b_c-v1.2.3-rc1",
	} {
		if got := layoutName(ref); got != want {
			t.Errorf("layoutName(%q) = %q, want %q", ref, got, want)
		}
	}
}

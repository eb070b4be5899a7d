package main

import (
	"io"
	"strings"
	"testing"
)

func TestBadUsageExitsTwoAndSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-size", "lots"}, "size"},
		{[]string{"-runs", "0"}, "runs 0"},
		{[]string{"extra"}, "extra"},
		{[]string{"-nosuchflag"}, "nosuchflag"},
	} {
		var stderr strings.Builder
		if code := run(tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.says) {
			t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.says)
		}
	}
}

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportSpecMistakesAreUsageErrors checks that a bad spec or list is
// exit 2 naming file, line and column, before any request: the registry
// named in them counts every connection it is offered.
func TestExportSpecMistakesAreUsageErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- struct{}{}
			c.Close()
		}
	}()
	host := ln.Addr().String()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, flag, file, text, want string
	}{
		{"unknown key", "-f", "b.yaml", "images:\n  - ref: " + host + "/a:1\n    platfroms: [linux/amd64]\n", "b.yaml:3:5: unknown key"},
		{"bad semver", "-f", "b.yaml", "images:\n  - ref: " + host + "/a\n    tags: {semver: '>= abc'}\n", "b.yaml:3:20: semver range"},
		{"bad regex", "-f", "b.yaml", "images:\n  - ref: " + host + "/a\n    tags: {regex: '(['}\n", "b.yaml:3:19: regex"},
		{"conflicting duplicate", "-f", "b.yaml", "images:\n  - " + host + "/a:1\n  - ref: " + host + "/a:1\n    referrers: false\n", "b.yaml:3:5:"},
		{"bad list line", "--images-from", "list.txt", host + "/a:1\n\n" + host + "/A:1 # bad\n", "list.txt:3:1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runBundle(t, "export", "--plain-http", "--cache", filepath.Join(dir, "cache"), "-o", filepath.Join(dir, "out.tar"), tc.flag, path)
			if code != exitUsage || !strings.Contains(stderr, filepath.Join(dir, tc.want)) {
				t.Errorf("exit %d, stderr %q; want exit 2 naming %s", code, stderr, tc.want)
			}
		})
	}
	if n := len(conns); n != 0 {
		t.Errorf("%d connections to the registry before the spec was found wrong", n)
	}
}

func TestExportSinceMustNameAFile(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runBundle(t, "export", "--since", filepath.Join(dir, "week47.tar.zst"), "-o", filepath.Join(dir, "out.tar"), "127.0.0.1:1/a:1")
	if code != exitUsage || !strings.Contains(stderr, "week47.tar.zst") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming the base", code, stderr)
	}
}

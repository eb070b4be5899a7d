package layout

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// writeDir unpacks entries into a fresh layout directory.
func writeDir(t *testing.T, entries []testEntry) string {
	t.Helper()
	dir := t.TempDir()
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

func TestOpenDirListsAndOpensTheLayout(t *testing.T) {
	entries := sampleEntries()
	dir := writeDir(t, entries)
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := d.Entries()
	if len(got) != len(entries) || got[0].Name != LayoutFile || got[1].Name != IndexFile {
		t.Fatalf("entries %v: want oci-layout, index.json, then %d blobs", got, len(entries)-2)
	}
	for i := 3; i < len(got); i++ {
		if got[i-1].Name > got[i].Name {
			t.Fatalf("blobs not sorted: %v", got)
		}
	}
	for _, e := range entries {
		rc, err := d.Open(e.name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, e.data) {
			t.Fatalf("%s: %v, %d bytes", e.name, err, len(b))
		}
	}
	if _, err := d.Open("README"); err == nil {
		t.Fatal("opened a file that is not part of the layout")
	}
}

func TestOpenDirRefuses(t *testing.T) {
	hex := sampleEntries()[3].name[len("blobs/sha256/"):]
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"symlinked index.json", func(t *testing.T, dir string) {
			mustDo(t, os.Remove(filepath.Join(dir, IndexFile)))
			mustDo(t, os.Symlink("/etc/passwd", filepath.Join(dir, IndexFile)))
		}},
		{"symlinked blob", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "blobs", "sha256", hex)
			mustDo(t, os.Remove(p))
			mustDo(t, os.Symlink("/etc/passwd", p))
		}},
		{"symlinked algorithm directory", func(t *testing.T, dir string) {
			other := t.TempDir()
			mustDo(t, os.Symlink(other, filepath.Join(dir, "blobs", "sha384")))
		}},
		{"symlinked blobs directory", func(t *testing.T, dir string) {
			mustDo(t, os.Rename(filepath.Join(dir, "blobs"), filepath.Join(dir, "real")))
			mustDo(t, os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "blobs")))
		}},
		{"stray file in blobs", func(t *testing.T, dir string) {
			mustDo(t, os.WriteFile(filepath.Join(dir, "blobs", "sha256", "x.tmp"), nil, 0o644))
		}},
		{"nested directory in blobs", func(t *testing.T, dir string) {
			mustDo(t, os.MkdirAll(filepath.Join(dir, "blobs", "sha256", "sub"), 0o755))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, sampleEntries())
			tt.setup(t, dir)
			d, err := OpenDir(dir)
			if err == nil {
				d.Close()
				t.Fatal("OpenDir accepted it")
			}
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("error %v, want ErrUnsafeEntry", err)
			}
		})
	}
}

func TestDirOpenRefusesAFileSwappedForASymlink(t *testing.T) {
	dir := writeDir(t, sampleEntries())
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustDo(t, os.Remove(filepath.Join(dir, IndexFile)))
	mustDo(t, os.Symlink(LayoutFile, filepath.Join(dir, IndexFile)))
	if rc, err := d.Open(IndexFile); err == nil {
		rc.Close()
		t.Fatal("opened a symbolic link")
	}
}

func TestOpenPath(t *testing.T) {
	entries := sampleEntries()
	tmp := t.TempDir()
	files := map[string]Compression{"b.tar": None, "b.tar.zst": Zstd, "b.tar.gz": Gzip}
	for name, c := range files {
		mustDo(t, os.WriteFile(filepath.Join(tmp, name), writeArchive(t, c, WriterOptions{}, entries), 0o644))
	}
	tests := []struct {
		path        string
		notSeekable bool
	}{
		{writeDir(t, entries), false},
		{filepath.Join(tmp, "b.tar"), false},
		{filepath.Join(tmp, "b.tar.zst"), false},
		{filepath.Join(tmp, "b.tar.gz"), true},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			l, c, err := OpenPath(tt.path)
			if tt.notSeekable {
				if !errors.Is(err, ErrNotSeekable) {
					t.Fatalf("OpenPath = %v, want ErrNotSeekable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if n := len(l.Entries()); n != len(entries) {
				t.Fatalf("%d entries, want %d", n, len(entries))
			}
			rc, err := l.Open(entries[4].name)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(b, entries[4].data) {
				t.Fatalf("%v, %d bytes", err, len(b))
			}
		})
	}
	if _, _, err := OpenPath(filepath.Join(tmp, "missing.tar")); err == nil {
		t.Fatal("OpenPath of a missing file succeeded")
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
)

// Dir is an unpacked layout directory. Opening goes through os.Root, so
// no name can reach outside the directory, and symbolic links are refused.
type Dir struct {
	root    *os.Root
	entries []Entry
	byName  map[string]bool
}

// OpenDir lists the layout in dir: oci-layout and index.json first, then
// the blobs sorted by name. Files at the top level other than those are
// ignored; anything under blobs/ that is not blobs/ALG/HEX, and every
// symbolic link, device or other special file, is an error.
func OpenDir(dir string) (*Dir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open layout directory: %w", err)
	}
	d := &Dir{root: root, byName: map[string]bool{}}
	if err := d.list(dir); err != nil {
		root.Close()
		return nil, err
	}
	return d, nil
}

func (d *Dir) list(dir string) error {
	for _, name := range []string{LayoutFile, IndexFile} {
		fi, err := d.root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("layout directory %s: %w", dir, err)
		}
		if err := d.add(dir, name, fi); err != nil {
			return err
		}
	}
	if fi, err := d.root.Lstat(BlobsDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("layout directory %s: %w", dir, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("%w: %s in %s is not a directory", ErrUnsafeEntry, BlobsDir, dir)
	}
	var blobs []string
	err := fs.WalkDir(d.root.FS(), BlobsDir, func(name string, de fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("layout directory %s: %w", dir, err)
		}
		if de.IsDir() {
			if !isLayoutDir(name) {
				return fmt.Errorf("%w: directory %s in %s is not part of a layout", ErrUnsafeEntry, name, dir)
			}
			return nil
		}
		if len(blobs) >= MaxEntries {
			return fmt.Errorf("%w: more than %d files in %s", ErrUnsafeEntry, MaxEntries, dir)
		}
		blobs = append(blobs, name)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(blobs)
	for _, name := range blobs {
		fi, err := d.root.Lstat(name)
		if err != nil {
			return fmt.Errorf("layout directory %s: %w", dir, err)
		}
		if err := d.add(dir, name, fi); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dir) add(dir, name string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s in %s is not a regular file (%s)", ErrUnsafeEntry, name, dir, fi.Mode().Type())
	}
	if err := CheckName(name); err != nil {
		return fmt.Errorf("layout directory %s: %w", dir, err)
	}
	d.entries = append(d.entries, Entry{Name: name, Size: fi.Size()})
	d.byName[name] = true
	return nil
}

// Entries lists the files: oci-layout, index.json, then the blobs by name.
func (d *Dir) Entries() []Entry { return append([]Entry(nil), d.entries...) }

// Open opens one listed file. It refuses a file that was replaced by a
// symbolic link or something else not regular since OpenDir.
func (d *Dir) Open(name string) (io.ReadCloser, error) {
	if !d.byName[name] {
		return nil, fmt.Errorf("open %s in layout directory: %w", name, fs.ErrNotExist)
	}
	fi, err := d.root.Lstat(name)
	if err != nil {
		return nil, fmt.Errorf("open %s in layout directory: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s in layout directory: %w: not a regular file", name, ErrUnsafeEntry)
	}
	f, err := d.root.Open(path.Clean(name))
	if err != nil {
		return nil, fmt.Errorf("open %s in layout directory: %w", name, err)
	}
	return f, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// OpenPath opens a layout directory or a seekable archive file (plain tar,
// or zstd with a seek table). Other archives give an error wrapping
// ErrNotSeekable: read them with NewReader. The Closer releases the file.
func OpenPath(p string) (Layout, io.Closer, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, fmt.Errorf("open layout: %w", err)
	}
	if fi.IsDir() {
		d, err := OpenDir(p)
		if err != nil {
			return nil, nil, err
		}
		return d, d, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("open layout: %w", err)
	}
	a, err := OpenArchive(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open layout archive %s: %w", p, err)
	}
	return a, f, nil
}

var (
	_ Layout = (*Dir)(nil)
	_ Layout = (*Archive)(nil)
)

package bench

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
)

// Floors are what the hardware does with the same bytes without bundle: the
// yardsticks the ratios are taken against.
type Floors struct {
	Get, SHA256, GetHashWrite, Cp, SHA256Sum, Tar, Zstd, Unzstd, Upload Row
}

// Rows lists the floors in table order.
func (f *Floors) Rows() []Row {
	return []Row{f.Get, f.SHA256, f.GetHashWrite, f.Cp, f.SHA256Sum, f.Tar, f.Zstd, f.Unzstd, f.Upload}
}

// getStreams is how many GETs the read floor keeps in flight: more than
// one, as any puller does, without turning the floor into a scheduler test.
const getStreams = 4

// measureFloors times every floor on the data set in src. work is a scratch
// directory, emptied again before it returns.
func measureFloors(ctx context.Context, cfg Config, src *Registry, ds *DataSet, work string) (*Floors, error) {
	f := &Floors{}
	files, storeBytes, err := blobFiles(src.BlobStore())
	if err != nil {
		return nil, err
	}
	f.Get = floorRow(fmt.Sprintf("floor: GET every blob+manifest (%d streams)", getStreams), ds.UniqueBytes)(
		RunSelf(func() error { return getAll(ctx, NewClient(src.Host), ds) }))
	f.SHA256 = floorRow("floor: Go sha256 of the blob store (1 core)", storeBytes)(
		RunSelf(func() error { return hashFiles(files) }))
	out := filepath.Join(work, "get-hash-write.out")
	f.GetHashWrite = floorRow("floor: GET + sha256 + write once (1 stream, 1 fsync)", ds.UniqueBytes)(
		RunSelf(func() error { return GetHashWrite(ctx, NewClient(src.Host), ds, out) }))
	// Deleting the file is no part of what export does, so it is not timed.
	if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing the write floor's file %s: %w", out, err)
	}

	cpDir := filepath.Join(work, "cp")
	f.Cp = floorRow("floor: cp -r blob store", storeBytes)(RunChild(ctx, work, "cp", "-r", src.BlobStore(), cpDir))
	if err := os.RemoveAll(cpDir); err != nil {
		return nil, fmt.Errorf("removing the copy %s: %w", cpDir, err)
	}
	f.SHA256Sum = floorRow("floor: sha256sum blob store", storeBytes)(RunChild(ctx, work, "sha256sum", files...))

	tarPath, zstPath := filepath.Join(work, "store.tar"), filepath.Join(work, "store.tar.zst")
	defer os.Remove(tarPath)
	defer os.Remove(zstPath)
	f.Tar = floorRow("floor: tar -cf blob store", storeBytes)(RunChild(ctx, work, "tar", "-cf", tarPath, "-C", src.BlobStore(), "."))
	f.Zstd = floorRow("floor: zstd -T2 -3 of the tar to /dev/null", storeBytes)(
		RunChild(ctx, work, "zstd", "-q", "-f", "-T2", "-3", tarPath, "-o", os.DevNull))
	// The decompression floor needs the compressed file; making it is not timed.
	if _, err := RunChild(ctx, work, "zstd", "-q", "-f", "-T2", "-3", tarPath, "-o", zstPath); err != nil {
		f.Unzstd = Row{Step: "floor: zstd -d of it", Err: err.Error()}
	} else {
		_ = os.Remove(tarPath)
		f.Unzstd = floorRow("floor: zstd -d of it", storeBytes)(RunChild(ctx, work, "zstd", "-q", "-d", "-f", zstPath, "-o", os.DevNull))
	}
	_ = os.Remove(zstPath)

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	up, err := StartRegistry(ctx, cfg.Registry, filepath.Join(work, "upload-floor"))
	if err != nil {
		return nil, err
	}
	defer up.RemoveAll()
	f.Upload = floorRow("floor: upload, 1 stream, monolithic PUT", ds.UniqueBytes)(RunSelf(func() error { return uploadAll(ctx, NewClient(up.Host), src, ds) }))
	return f, ctx.Err()
}

// floorRow names a floor; the returned func takes a timed run's results
// directly, as in floorRow(step, n)(RunChild(...)).
func floorRow(step string, bytes int64) func(Sample, error) Row {
	return func(s Sample, err error) Row {
		r := Row{Step: step, Sample: s, Bytes: bytes}
		if err != nil {
			r.Err = err.Error()
		}
		return r
	}
}

// blobFiles lists the data files of a registry blob store and their total size.
func blobFiles(root string) ([]string, int64, error) {
	var files []string
	var total int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "data" {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, path)
		total += info.Size()
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing the blob store %s: %w", root, err)
	}
	if len(files) == 0 {
		return nil, 0, fmt.Errorf("the blob store %s is empty: was the data set pushed?", root)
	}
	return files, total, nil
}

func hashFiles(files []string) error {
	h := sha256.New()
	for _, p := range files {
		fd, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("hashing %s: %w", p, err)
		}
		h.Reset()
		_, err = io.Copy(h, fd)
		fd.Close()
		if err != nil {
			return fmt.Errorf("hashing %s: %w", p, err)
		}
	}
	return nil
}

// getAll reads every blob and manifest of ds once.
func getAll(ctx context.Context, c *Client, ds *DataSet) error {
	return forEachObject(ctx, ds, func(it Item, manifest bool) error {
		_, err := c.Get(ctx, it.Repo, it.Desc, manifest)
		return err
	})
}

// GetHashWrite is what export must at least do: read every object from
// the source, hash it and check it, and write it once into one file, synced
// once at the end. One stream, in order, with large writes, as an archive
// is written; measured, four streams writing at scattered offsets in small
// writes cost the kernel far more than the bytes (28 s of CPU for 5 GiB).
func GetHashWrite(ctx context.Context, c *Client, ds *DataSet, path string) error {
	fd, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write floor: %w", err)
	}
	defer fd.Close()
	bw := bufio.NewWriterSize(fd, 1<<20)
	isManifest := manifestSet(ds)
	for _, it := range wholeSet(ds) {
		h := sha256.New()
		if _, err := c.GetTo(ctx, it.Repo, it.Desc, isManifest[it.Desc.Digest], io.MultiWriter(h, bw)); err != nil {
			return err
		}
		if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != it.Desc.Digest {
			return fmt.Errorf("write floor: %s from %s has digest %s", it.Desc.Digest, it.Repo, got)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write floor: writing %s: %w", path, err)
	}
	if err := fd.Sync(); err != nil {
		return fmt.Errorf("write floor: syncing %s: %w", path, err)
	}
	if err := fd.Close(); err != nil {
		return fmt.Errorf("write floor: closing %s: %w", path, err)
	}
	return nil
}

// forEachObject runs fn over every blob and manifest of ds, getStreams at
// once, saying which are manifests.
func forEachObject(ctx context.Context, ds *DataSet, fn func(it Item, manifest bool) error) error {
	isManifest := manifestSet(ds)
	return forEach(ctx, wholeSet(ds), getStreams, func(it Item) error {
		return fn(it, isManifest[it.Desc.Digest])
	})
}

func manifestSet(ds *DataSet) map[digest.Digest]bool {
	set := map[digest.Digest]bool{}
	for _, m := range ds.Manifests {
		set[m.Desc.Digest] = true
	}
	return set
}

// wholeSet is what a bundle of every tag holds, each object once: the
// blobs, then the manifests.
func wholeSet(ds *DataSet) []Item {
	return append(append([]Item(nil), ds.Blobs...), ds.Manifests...)
}

// uploadAll sends every unique blob and manifest of ds, read from the
// source's blob store, as blobs into one repository, one after the other.
func uploadAll(ctx context.Context, c *Client, src *Registry, ds *DataSet) error {
	for _, it := range wholeSet(ds) {
		p := src.BlobPath(it.Desc.Digest)
		fd, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("upload floor: opening %s: %w", p, err)
		}
		d := it.Desc
		d.MediaType = "application/octet-stream"
		err = c.UploadBlob(ctx, "floor/upload", d, fd)
		fd.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

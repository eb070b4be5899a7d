package layout

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// bigArchive has small metadata and ten 1 MiB blobs in 64 KiB frames.
func bigArchive(t *testing.T, c Compression) ([]testEntry, []byte) {
	t.Helper()
	entries := []testEntry{{name: LayoutFile, data: LayoutBytes()}, {name: IndexFile, data: textBytes(1, 2000)}}
	for i := range 10 {
		entries = append(entries, blobEntry(randomBytes(uint64(100+i), 1<<20), i%2 == 0))
	}
	return entries, writeArchive(t, c, WriterOptions{}, entries)
}

func TestArchiveReadsOnlyWhatItNeeds(t *testing.T) {
	for _, c := range []Compression{None, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			entries, data := bigArchive(t, c)
			a, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			listed := a.BytesRead()
			if listed > int64(len(data))/100 {
				t.Errorf("listing read %d of %d bytes, want under 1%%", listed, len(data))
			}
			rc, err := a.Open(IndexFile)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, entries[1].data) {
				t.Fatalf("index.json: %v, %d bytes", err, len(got))
			}
			if one := a.BytesRead() - listed; one > 16<<10 {
				t.Errorf("opening a 2000-byte entry read %d bytes", one)
			}
			before := a.BytesRead()
			blobRC, err := a.Open(entries[5].name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, blobRC); err != nil {
				t.Fatal(err)
			}
			blobRC.Close()
			if read := a.BytesRead() - before; read > (1<<20)+(64<<10) {
				t.Errorf("reading one 1 MiB blob read %d bytes of the archive", read)
			}
		})
	}
}

func TestArchiveOpenIsSafeConcurrently(t *testing.T) {
	entries, data := bigArchive(t, Zstd)
	a, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(entries))
	for range 2 {
		for _, e := range entries {
			wg.Go(func() {
				rc, err := a.Open(e.name)
				if err != nil {
					errs <- err
					return
				}
				defer rc.Close()
				got, err := io.ReadAll(rc)
				if err != nil {
					errs <- err
				} else if !bytes.Equal(got, e.data) {
					errs <- errors.New(e.name + ": content differs")
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestArchiveOpenUnknownEntry(t *testing.T) {
	_, data := bigArchive(t, None)
	a, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Open("blobs/sha256/0000"); err == nil {
		t.Fatal("opened an entry that is not in the archive")
	}
}

func TestArchiveReportsADamagedFrame(t *testing.T) {
	entries, data := bigArchive(t, Zstd)
	data = bytes.Clone(data)
	data[len(data)/2] ^= 0xff
	a, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err) // the damage is in a blob's frame, not a header's
	}
	var failures int
	for _, e := range entries {
		rc, err := a.Open(e.name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			failures++
			if !strings.Contains(err.Error(), "at offset") || !strings.Contains(err.Error(), e.name) {
				t.Errorf("error %q does not name the entry and offset", err)
			}
		}
	}
	if failures != 1 {
		t.Fatalf("%d entries failed to read, want exactly the damaged one", failures)
	}
}

// TestOpenArchiveValidatesTheSeekTable damages the table in every way
// the reader checks.
func TestOpenArchiveValidatesTheSeekTable(t *testing.T) {
	_, good := bigArchive(t, Zstd)
	n := len(good)
	table, err := readSeekTable(bytes.NewReader(good), int64(n))
	if err != nil {
		t.Fatal(err)
	}
	frames := len(table.frames)
	tableStart := n - seekFooterSize - 8*frames - skippableHdrSize
	put32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
	}
	tests := []struct {
		name         string
		damage       func([]byte) []byte
		notSeekable  bool
		wantContains string
	}{
		{"no seek table", func(b []byte) []byte { return b[:tableStart] }, true, ""},
		{"bad footer magic", put32(n-4, 0x12345678), true, ""},
		{"reserved bits", func(b []byte) []byte { b[n-5] = 0x04; return b }, false, "reserved"},
		{"checksum flag changes entry size", func(b []byte) []byte { b[n-5] = 0x80; return b }, false, "damaged"},
		{"too many frames", put32(n-9, 0xffffffff), false, "do not fit"},
		{"one frame fewer", put32(n-9, uint32(frames-1)), false, "damaged"},
		{"bad skippable magic", put32(tableStart, 0x184D2A50), false, "skippable"},
		{"sizes do not add up", put32(tableStart+8, table.frames[0].csize+1), false, "add up"},
		{"zero-size frame", put32(tableStart+8, 0), false, "no bytes"},
		{"decompressed size too large", put32(tableStart+12, 0xffffff00), false, "differs from the seek table"},
		{"shorter than a footer", func(b []byte) []byte { return b[:5] }, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.damage(bytes.Clone(good))
			_, err := OpenArchive(bytes.NewReader(b), int64(len(b)))
			if err == nil {
				t.Fatal("OpenArchive accepted a damaged seek table")
			}
			if errors.Is(err, ErrNotSeekable) != tt.notSeekable {
				t.Fatalf("error %v: ErrNotSeekable %v, want %v", err, !tt.notSeekable, tt.notSeekable)
			}
			if !strings.Contains(err.Error(), tt.wantContains) {
				t.Fatalf("error %q does not contain %q", err, tt.wantContains)
			}
		})
	}
}

func TestFrameSizeMismatchIsAnError(t *testing.T) {
	// A table whose decompressed sizes are shifted between two frames
	// still adds up, but the frames do not decompress to what it says.
	entries, good := bigArchive(t, Zstd)
	n := len(good)
	table, err := readSeekTable(bytes.NewReader(good), int64(n))
	if err != nil {
		t.Fatal(err)
	}
	frames := len(table.frames)
	tableStart := n - seekFooterSize - 8*frames - skippableHdrSize
	b := bytes.Clone(good)
	last := frames - 3 // two content frames of the last blob, before the trailer's
	d := binary.LittleEndian.Uint32(b[tableStart+8+8*last+4:])
	binary.LittleEndian.PutUint32(b[tableStart+8+8*last+4:], d-512)
	binary.LittleEndian.PutUint32(b[tableStart+8+8*(last+1)+4:], table.frames[last+1].dsize+512)
	// The listing decodes the frames around the last blob's end, the
	// reader of its content the others: one of them must refuse.
	a, err := OpenArchive(bytes.NewReader(b), int64(len(b)))
	if err == nil {
		rc, oerr := a.Open(entries[len(entries)-1].name)
		if oerr != nil {
			t.Fatal(oerr)
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
	}
	if !errors.Is(err, errFrameSize) {
		t.Fatalf("reading through a mis-sized frame: %v, want errFrameSize", err)
	}
}

// TestArchiveReadsFramesCutAnywhere: other seekable writers cut frames
// without regard to tar headers; listing and opening must still work.
func TestArchiveReadsFramesCutAnywhere(t *testing.T) {
	want := sampleEntries()
	plain := writeArchive(t, None, WriterOptions{}, want)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out []byte
	var frames []seekFrame
	for _, cut := range [][2]int{{0, 700}, {700, 100000}, {100000, 100001}, {100001, len(plain)}} {
		f := enc.EncodeAll(plain[cut[0]:cut[1]], nil)
		out = append(out, f...)
		frames = append(frames, seekFrame{csize: uint32(len(f)), dsize: uint32(cut[1] - cut[0])})
	}
	seekable, err := appendSeekTable(bytes.Clone(out), frames)
	if err != nil {
		t.Fatal(err)
	}
	a, err := OpenArchive(bytes.NewReader(seekable), int64(len(seekable)))
	if err != nil {
		t.Fatal(err)
	}
	var got []testEntry
	for _, e := range a.Entries() {
		rc, err := a.Open(e.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, testEntry{name: e.Name, data: b})
	}
	sameEntries(t, got, want)

	// Without the table it is an ordinary zstd stream: not seekable,
	// but the streaming reader takes it.
	if _, err := OpenArchive(bytes.NewReader(out), int64(len(out))); !errors.Is(err, ErrNotSeekable) {
		t.Fatalf("OpenArchive without seek table = %v, want ErrNotSeekable", err)
	}
	r, err := NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := readAll(r)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, streamed, want)
}

// TestListingIsLinear lists archives whose headers all sit in one zstd
// frame (which once made listing decode the frame again for each header)
// at 1x, 4x and 16x: what the listing reads and decodes must grow in
// proportion, not faster.
func TestListingIsLinear(t *testing.T) {
	var reads []int64
	for _, k := range []int{1, 4, 16} {
		var hdrs []*tar.Header
		for range 1000 * k {
			hdrs = append(hdrs, &tar.Header{Name: "blobs/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		plain := rawTar(t, hdrs...)
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		frame := enc.EncodeAll(plain, nil)
		enc.Close()
		data, err := appendSeekTable(bytes.Clone(frame), []seekFrame{{csize: uint32(len(frame)), dsize: uint32(len(plain))}})
		if err != nil {
			t.Fatal(err)
		}
		a, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		reads = append(reads, a.BytesRead())
	}
	for i, k := range []int64{4, 16} {
		if reads[i+1] > reads[0]*k*13/10+64<<10 {
			t.Errorf("listing read %v bytes for 1x, 4x, 16x the headers: not linear", reads)
		}
	}
}

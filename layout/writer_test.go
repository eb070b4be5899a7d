package layout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/zstd"
)

var allCompressions = []Compression{None, Gzip, Zstd}

func TestRoundTripThroughStreamingReader(t *testing.T) {
	for _, c := range allCompressions {
		t.Run(string(c), func(t *testing.T) {
			want := sampleEntries()
			data := writeArchive(t, c, WriterOptions{Concurrency: 3}, want)
			r, err := NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if r.Compression() != c {
				t.Fatalf("detected %s, wrote %s", r.Compression(), c)
			}
			got, err := readAll(r)
			if err != nil {
				t.Fatal(err)
			}
			sameEntries(t, got, want)
			if r.Offset() != int64(len(data)) && c == None {
				t.Errorf("Offset() = %d after reading a %d-byte plain tar", r.Offset(), len(data))
			}
		})
	}
}

func TestRoundTripThroughArchive(t *testing.T) {
	for _, c := range []Compression{None, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			want := sampleEntries()
			data := writeArchive(t, c, WriterOptions{}, want)
			a, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if a.Compression() != c {
				t.Fatalf("Compression() = %s, want %s", a.Compression(), c)
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
					t.Fatalf("%s: %v", e.Name, err)
				}
				got = append(got, testEntry{name: e.Name, data: b})
			}
			sameEntries(t, got, want)
		})
	}
}

func TestGzipArchiveIsNotSeekable(t *testing.T) {
	data := writeArchive(t, Gzip, WriterOptions{}, sampleEntries())
	_, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, ErrNotSeekable) {
		t.Fatalf("OpenArchive(gzip) = %v, want ErrNotSeekable", err)
	}
}

// TestOutputReadByStandardDecoders checks the bytes with decoders that
// share no code with ours, including the zstd command when installed.
func TestOutputReadByStandardDecoders(t *testing.T) {
	want := sampleEntries()
	decoders := []struct {
		name string
		c    Compression
		dec  func(t *testing.T, b []byte) []byte
	}{
		{"archive/tar", None, func(t *testing.T, b []byte) []byte { return b }},
		{"compress/gzip", Gzip, func(t *testing.T, b []byte) []byte {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}},
		{"klauspost zstd stream", Zstd, func(t *testing.T, b []byte) []byte {
			zr, err := zstd.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			out, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}},
		{"zstd -d", Zstd, func(t *testing.T, b []byte) []byte {
			if _, err := exec.LookPath("zstd"); err != nil {
				t.Skip("zstd command not installed")
			}
			cmd := exec.Command("zstd", "-d", "-c", "-q")
			cmd.Stdin = bytes.NewReader(b)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("zstd -d: %v", err)
			}
			return out
		}},
	}
	for _, d := range decoders {
		t.Run(d.name, func(t *testing.T) {
			plain := d.dec(t, writeArchive(t, d.c, WriterOptions{}, want))
			tr := tar.NewReader(bytes.NewReader(plain))
			var got []testEntry
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if h.Mode != 0o644 || h.Uid != 0 || h.ModTime.Unix() != 0 || h.Typeflag != tar.TypeReg {
					t.Errorf("%s: header mode %o uid %d mtime %v type %c, want 644 0 epoch regular", h.Name, h.Mode, h.Uid, h.ModTime, h.Typeflag)
				}
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, testEntry{name: h.Name, data: b})
			}
			sameEntries(t, got, want)
		})
	}
}

func TestWriterOutputIsDeterministic(t *testing.T) {
	for _, c := range allCompressions {
		t.Run(string(c), func(t *testing.T) {
			a := writeArchive(t, c, WriterOptions{Concurrency: 1}, sampleEntries())
			b := writeArchive(t, c, WriterOptions{Concurrency: 4}, sampleEntries())
			if !bytes.Equal(a, b) {
				t.Fatalf("same content gave different archives (%d and %d bytes)", len(a), len(b))
			}
		})
	}
}

func TestWriterCompressesTextAndStoresPrecompressedCheaply(t *testing.T) {
	text := textBytes(9, 1<<20)
	random := randomBytes(9, 1<<20)
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			textOut := writeArchive(t, c, WriterOptions{}, []testEntry{blobEntry(text, false)})
			if len(textOut) > len(text)/3 {
				t.Errorf("1 MiB of JSON-like text compressed to %d bytes, want under a third", len(textOut))
			}
			randOut := writeArchive(t, c, WriterOptions{}, []testEntry{blobEntry(random, true)})
			if over := len(randOut) - len(random); over > len(random)/100 {
				t.Errorf("precompressed 1 MiB grew by %d bytes, want under 1%%", over)
			}
		})
	}
}

// TestZstdFramesCutAtEntryBoundaries checks the frame layout the
// seekable reader relies on: every tar header in a small frame of its own.
func TestZstdFramesCutAtEntryBoundaries(t *testing.T) {
	entries := sampleEntries()
	data := writeArchive(t, Zstd, WriterOptions{}, entries)
	table, err := readSeekTable(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	headerFrames := 0
	for i, f := range table.frames {
		if f.dsize > testChunk {
			t.Errorf("frame %d of %d bytes, chunk size is %d", i, f.dsize, testChunk)
		}
		plain, err := dec.DecodeAll(data[table.coff[i]:table.coff[i+1]], nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		cr := &countingReader{r: bytes.NewReader(plain)}
		if h, err := tar.NewReader(cr).Next(); err == nil {
			headerFrames++
			if cr.n != int64(len(plain)) {
				t.Errorf("header of %s (%d bytes) shares a %d-byte frame", h.Name, cr.n, len(plain))
			}
		}
	}
	if headerFrames != len(entries) {
		t.Errorf("%d frames of exactly one tar header, want one per entry (%d)", headerFrames, len(entries))
	}
}

func TestWriteEntryRefuses(t *testing.T) {
	good := textBytes(1, 100)
	tests := []struct {
		name    string
		entry   string
		size    int64
		src     func() io.Reader
		wantErr string
		usable  bool // refused before writing anything
	}{
		{"unsafe name", "../etc/passwd", 1, src(good), "unsafe entry", true},
		{"name outside layout", "README", 1, src(good), "unsafe entry", true},
		{"negative size", blob(good), -1, src(good), "negative size", true},
		{"short source", blob(good), 200, src(good), "source ended after 100 of 200 bytes", false},
		{"long source", blob(good), 50, src(good), "more bytes than the declared size", false},
		{"failing source", blob(good), 100, func() io.Reader { return iotest.ErrReader(errors.New("disk on fire")) }, "disk on fire", false},
		{"error at EOF", blob(good), 100, func() io.Reader {
			return io.MultiReader(bytes.NewReader(good), iotest.ErrReader(errors.New("digest mismatch")))
		}, "digest mismatch", false},
	}
	for _, c := range allCompressions {
		for _, tt := range tests {
			t.Run(string(c)+"/"+tt.name, func(t *testing.T) {
				w, err := NewWriter(io.Discard, c, WriterOptions{ChunkSize: testChunk})
				if err != nil {
					t.Fatal(err)
				}
				err = w.WriteEntry(tt.entry, tt.size, tt.src(), false)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("WriteEntry = %v, want an error containing %q", err, tt.wantErr)
				}
				if tt.usable {
					if err := w.WriteEntry(LayoutFile, 2, strings.NewReader("{}"), false); err != nil {
						t.Fatalf("after a refused name: %v", err)
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					return
				}
				if err2 := w.WriteEntry(LayoutFile, 2, strings.NewReader("{}"), false); err2 == nil {
					t.Error("writer accepted an entry after a failed one")
				}
				if cerr := w.Close(); cerr == nil {
					t.Error("Close after a failed entry reported success")
				}
			})
		}
	}
}

func TestNewWriterRefusesBadOptions(t *testing.T) {
	tests := []struct {
		c    Compression
		opts WriterOptions
	}{
		{Gzip, WriterOptions{Level: 10}},
		{Zstd, WriterOptions{Level: 23}},
		{Zstd, WriterOptions{Level: -1}},
		{None, WriterOptions{ChunkSize: 10}},
		{Zstd, WriterOptions{Concurrency: -2}},
		{"lz4", WriterOptions{}},
	}
	for _, tt := range tests {
		if _, err := NewWriter(io.Discard, tt.c, tt.opts); err == nil {
			t.Errorf("NewWriter(%s, %+v) accepted bad options", tt.c, tt.opts)
		}
	}
}

// failWriter fails after n bytes, as a full disk would.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errors.New("no space left on device")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriterReportsOutputFailure(t *testing.T) {
	for _, c := range allCompressions {
		t.Run(string(c), func(t *testing.T) {
			w, err := NewWriter(&failWriter{n: 10 << 10}, c, WriterOptions{ChunkSize: testChunk})
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for i := 0; i < 8 && werr == nil; i++ {
				d := randomBytes(uint64(i), 100<<10)
				werr = w.WriteEntry(blob(d), int64(len(d)), bytes.NewReader(d), false)
			}
			cerr := w.Close()
			if err := errors.Join(werr, cerr); err == nil || !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("write error %v, close error %v: want the output's failure", werr, cerr)
			}
		})
	}
}

func src(b []byte) func() io.Reader {
	return func() io.Reader { return bytes.NewReader(b) }
}

package layout

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

var okBlob = blob([]byte{})

func TestReadersRefuseUnsafeEntries(t *testing.T) {
	tests := []struct {
		name string
		hdrs []*tar.Header
		// what the error must mention
		want string
	}{
		{"absolute path", []*tar.Header{{Name: "/etc/passwd", Typeflag: tar.TypeReg}}, "/etc/passwd"},
		{"dot dot", []*tar.Header{{Name: "blobs/../../x", Typeflag: tar.TypeReg}}, "blobs/../../x"},
		{"backslash", []*tar.Header{{Name: `blobs\sha256\x`, Typeflag: tar.TypeReg}}, `blobs\\sha256\\x`},
		{"symlink", []*tar.Header{{Name: IndexFile, Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, "symbolic link"},
		{"hard link", []*tar.Header{{Name: LayoutFile, Typeflag: tar.TypeReg}, {Name: IndexFile, Typeflag: tar.TypeLink, Linkname: LayoutFile}}, "hard link"},
		{"char device", []*tar.Header{{Name: okBlob, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}, "device"},
		{"block device", []*tar.Header{{Name: okBlob, Typeflag: tar.TypeBlock}}, "device"},
		{"fifo", []*tar.Header{{Name: okBlob, Typeflag: tar.TypeFifo}}, "FIFO"},
		{"name outside layout", []*tar.Header{{Name: "etc/cron.d/x", Typeflag: tar.TypeReg}}, "etc/cron.d/x"},
		{"unknown digest algorithm", []*tar.Header{{Name: "blobs/md5/d41d8cd98f00b204e9800998ecf8427e", Typeflag: tar.TypeReg}}, "md5"},
		{"uppercase hex", []*tar.Header{{Name: strings.ToUpper(okBlob[len("blobs/sha256/"):]), Typeflag: tar.TypeReg}}, "not"},
		{"short hex", []*tar.Header{{Name: "blobs/sha256/abc", Typeflag: tar.TypeReg}}, "blobs/sha256/abc"},
		{"duplicate", []*tar.Header{{Name: IndexFile, Typeflag: tar.TypeReg}, {Name: "./" + IndexFile, Typeflag: tar.TypeReg}}, "twice"},
		{"directory inside blobs", []*tar.Header{{Name: okBlob + "/", Typeflag: tar.TypeDir}}, "directory"},
		{"other directory", []*tar.Header{{Name: "etc/", Typeflag: tar.TypeDir}}, "etc/"},
		{"pax global header", []*tar.Header{{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"path": "x"}}}, "global"},
		{"long pax path escapes", []*tar.Header{{Name: strings.Repeat("a/", 150) + "../../x", Typeflag: tar.TypeReg}}, "../../x"},
	}
	for _, tt := range tests {
		data := rawTar(t, tt.hdrs...)
		check := func(t *testing.T, err error) {
			t.Helper()
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("error %v, want ErrUnsafeEntry", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		}
		t.Run("stream/"+tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = readAll(r)
			check(t, err)
			if _, again := r.Next(); !errors.Is(again, ErrUnsafeEntry) {
				t.Fatalf("Next after a refusal = %v, want the same error", again)
			}
		})
		t.Run("archive/"+tt.name, func(t *testing.T) {
			_, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
			check(t, err)
		})
	}
}

// TestReadersAcceptOtherToolsLayouts: skopeo writes directory entries,
// `tar -C dir .` writes "./" prefixes, other tools put index.json last.
func TestReadersAcceptOtherToolsLayouts(t *testing.T) {
	data := rawTar(t,
		&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "./blobs/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "blobs/sha256/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "./" + okBlob, Typeflag: tar.TypeReg},
		&tar.Header{Name: LayoutFile, Typeflag: tar.TypeReg, Size: 3},
		// A PAX record makes a header of several blocks.
		&tar.Header{Name: IndexFile, Typeflag: tar.TypeReg, Size: 1000, PAXRecords: map[string]string{"comment": strings.Repeat("c", 600)}},
	)
	want := []Entry{{Name: okBlob}, {Name: LayoutFile, Size: 3}, {Name: IndexFile, Size: 1000}}
	r, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var got []Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	a, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for name, list := range map[string][]Entry{"stream": got, "archive": a.Entries()} {
		if len(list) != len(want) {
			t.Fatalf("%s: entries %v, want %v", name, list, want)
		}
		for i := range want {
			if list[i].Name != want[i].Name || list[i].Size != want[i].Size {
				t.Fatalf("%s: entries %v, want %v", name, list, want)
			}
		}
	}
}

// TestStreamingReaderReportsWhereADamagedStreamBroke cuts and damages
// archives of every compression; the error must not be a bare EOF and
// must say where.
func TestStreamingReaderReportsWhereADamagedStreamBroke(t *testing.T) {
	entries := sampleEntries()
	for _, c := range allCompressions {
		data := writeArchive(t, c, WriterOptions{}, entries)
		tarEnd := len(data)
		if c == Zstd {
			table, err := readSeekTable(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			tarEnd = int(table.coff[len(table.frames)])
		}
		damages := []struct {
			name string
			mod  func([]byte) []byte
		}{
			{"empty", func(b []byte) []byte { return nil }},
			{"cut in half", func(b []byte) []byte { return b[:len(b)/2] }},
			{"cut before the end of the tar", func(b []byte) []byte { return b[:tarEnd-1] }},
			{"cut before the end-of-archive marker", func(b []byte) []byte { return cutBeforeTrailer(t, c, b) }},
			{"byte flipped in the middle", func(b []byte) []byte {
				b = bytes.Clone(b)
				b[len(b)/2] ^= 0x55
				return b
			}},
		}
		for _, d := range damages {
			if c == None && strings.Contains(d.name, "flipped") {
				continue // a plain tar has no checksum over content
			}
			t.Run(string(c)+"/"+d.name, func(t *testing.T) {
				damaged := d.mod(data)
				r, err := NewReader(bytes.NewReader(damaged), int64(len(damaged)))
				if err != nil {
					t.Fatal(err)
				}
				_, err = readAll(r)
				if err == nil || err == io.EOF {
					t.Fatalf("damaged %s archive read without error", c)
				}
				if !strings.Contains(err.Error(), "offset") {
					t.Fatalf("error %q does not say where the stream broke", err)
				}
				t.Log(err)
				if strings.Contains(d.name, "cut") && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %q for a truncated archive does not wrap io.ErrUnexpectedEOF", err)
				}
			})
		}
	}
}

// cutBeforeTrailer returns the archive without its end-of-archive marker,
// so that it ends cleanly at an entry boundary.
func cutBeforeTrailer(t *testing.T, c Compression, b []byte) []byte {
	t.Helper()
	if c == None {
		return b[:len(b)-2*tarBlock]
	}
	if c == Gzip {
		// Rewrite: the members make the cut point hard to find.
		return rewriteWithoutTrailer(t, c)
	}
	table, err := readSeekTable(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The last frame holds the trailer alone (the last entry is 512 bytes, no padding).
	return b[:table.coff[len(table.frames)-1]]
}

func rewriteWithoutTrailer(t *testing.T, c Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	s, err := newGzipSink(&buf, WriterOptions{Level: 6, Concurrency: 1, ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	data := writeArchive(t, None, WriterOptions{}, sampleEntries())
	if _, err := s.Write(data[:len(data)-2*tarBlock]); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestStreamingReaderReadBeforeNext(t *testing.T) {
	r, err := NewReader(bytes.NewReader(writeArchive(t, None, WriterOptions{}, sampleEntries())), -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read before Next succeeded")
	}
}

package verify

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// endlessReader never ends: a verifier reading it must stop by itself.
type endlessReader struct{ n int64 }

func (e *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestReaderVerifiesContent(t *testing.T) {
	good := []byte("hello, air gap")
	tests := []struct {
		name     string
		src      []byte
		desc     ocispec.Descriptor
		wantErr  error  // nil means the copy succeeds
		wantText string // part of the error message
	}{
		{name: "matching content passes", src: good, desc: descOf(good)},
		{name: "empty content passes", src: nil, desc: descOf(nil)},
		{name: "sha512 content passes", src: good, desc: ocispec.Descriptor{Digest: digest.SHA512.FromBytes(good), Size: int64(len(good))}},
		{name: "same size other bytes is a digest mismatch", src: []byte("hello, air gaP"), desc: descOf(good), wantErr: ErrMismatch, wantText: "bytes that hash to sha256:"},
		{name: "short content is a size mismatch", src: good[:5], desc: descOf(good), wantErr: ErrMismatch, wantText: "got 5 bytes where its descriptor says 14"},
		{name: "long content stops after declared size", src: append(append([]byte{}, good...), '!'), desc: descOf(good), wantErr: ErrMismatch, wantText: "more than the 14 bytes"},
		{name: "declared size too small", src: good, desc: ocispec.Descriptor{Digest: digest.FromBytes(good), Size: 3}, wantErr: ErrMismatch, wantText: "more than the 3 bytes"},
		{name: "invalid digest is refused", src: good, desc: ocispec.Descriptor{Digest: "sha256:nothex", Size: 14}, wantText: "cannot verify"},
		{name: "unsupported algorithm is refused", src: good, desc: ocispec.Descriptor{Digest: "md5:d41d8cd98f00b204e9800998ecf8427e", Size: 14}, wantErr: digest.ErrDigestUnsupported},
		{name: "negative size is refused", src: good, desc: ocispec.Descriptor{Digest: digest.FromBytes(good), Size: -1}, wantText: "negative size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := io.Copy(&out, NewReader(bytes.NewReader(tc.src), tc.desc))
			if tc.wantErr == nil && tc.wantText == "" {
				if err != nil {
					t.Fatalf("copy: %v", err)
				}
				if !bytes.Equal(out.Bytes(), tc.src) {
					t.Fatalf("got %q, want %q", out.Bytes(), tc.src)
				}
				return
			}
			if err == nil {
				t.Fatal("copy succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
			if int64(out.Len()) > max(tc.desc.Size, 0) {
				t.Errorf("passed on %d bytes, more than the declared %d", out.Len(), tc.desc.Size)
			}
		})
	}
}

func TestReaderMismatchErrorNamesDigestWantedAndGot(t *testing.T) {
	good := []byte("abc")
	_, err := io.ReadAll(NewReader(strings.NewReader("abd"), descOf(good)))
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("error %v is not a *MismatchError", err)
	}
	if me.Digest != digest.FromBytes(good) || me.GotDigest != digest.FromString("abd") || me.Size != 3 || me.GotSize != 3 {
		t.Errorf("got %+v", me)
	}
	// Same size, other bytes: the message says the digest, not a size.
	for _, want := range []string{me.Digest.String(), me.GotDigest.String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "3 bytes") {
		t.Errorf("error %q speaks of sizes that agree", err)
	}
}

func TestReaderNeverReadsUnbounded(t *testing.T) {
	src := &endlessReader{}
	d := ocispec.Descriptor{Digest: digest.FromString("x"), Size: 1000}
	n, err := io.Copy(io.Discard, NewReader(src, d))
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("error %v, want ErrMismatch", err)
	}
	if n != 1000 {
		t.Errorf("passed on %d bytes, want 1000", n)
	}
	if src.n > 1001 {
		t.Errorf("read %d bytes from the source, want at most 1001", src.n)
	}
}

func TestReaderHandlesSmallAndDataWithEOFReads(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	for name, r := range map[string]io.Reader{
		"one byte":    iotest.OneByteReader(bytes.NewReader(data)),
		"data eof":    iotest.DataErrReader(bytes.NewReader(data)),
		"half reader": iotest.HalfReader(bytes.NewReader(data)),
	} {
		t.Run(name, func(t *testing.T) {
			if err := iotest.TestReader(NewReader(r, descOf(data)), data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReaderPassesSourceErrorsThrough(t *testing.T) {
	boom := errors.New("connection reset")
	r := NewReader(io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(boom)), descOf([]byte("abc")))
	_, err := io.ReadAll(r)
	if !errors.Is(err, boom) || errors.Is(err, ErrMismatch) {
		t.Fatalf("error %v, want the source's error", err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Errorf("second read: %v, want the same error again", err)
	}
}

const benchSize = 64 << 20

func BenchmarkReader(b *testing.B) {
	data := bytes.Repeat([]byte("bundle verify benchmark data...."), benchSize/32)
	d := descOf(data)
	buf := make([]byte, 1<<20)
	b.Run("verify.NewReader", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := io.CopyBuffer(io.Discard, NewReader(bytes.NewReader(data), d), buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			h := sha256.New()
			if _, err := io.CopyBuffer(h, onlyReader{bytes.NewReader(data)}, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// onlyReader hides WriterTo so both benchmarks copy through the same buffer.
type onlyReader struct{ io.Reader }

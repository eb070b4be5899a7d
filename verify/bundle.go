package verify

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bundle-dev/bundle/layout"
)

// Severities of a Problem.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// Sidecar states.
const (
	SidecarOK       = "ok"
	SidecarMissing  = "missing"
	SidecarMismatch = "mismatch"
)

// Options for Bundle and Inspect.
type Options struct {
	Stdin io.Reader // read when the file is "-"
}

// Problem is one finding of Bundle.
type Problem struct {
	Severity string `json:"severity"` // "error" | "warning" | "info"
	Entry    string `json:"entry,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Offset   int64  `json:"offset,omitempty"` // compressed offset in the archive, where known
	Message  string `json:"message"`
}

// Report is what Bundle found. OK is false when any problem is an error.
type Report struct {
	File        string    `json:"file"`
	Compression string    `json:"compression"`
	Sidecar     string    `json:"sidecar"` // "ok", "missing", "mismatch"
	Entries     int       `json:"entries"`
	Blobs       int       `json:"blobs"`
	Bytes       int64     `json:"bytes"`
	Manifests   int       `json:"manifests"`
	Images      []string  `json:"images,omitempty"`
	Problems    []Problem `json:"problems,omitempty"`
	OK          bool      `json:"ok"`
}

// maxSidecar bounds the FILE.sha256 read; a real one is one line.
const maxSidecar = 64 << 10

// Bundle checks the archive at path ("-" for opts.Stdin) in one streaming
// pass. The error return is only for an archive that cannot be opened;
// damage is reported in the Report.
func Bundle(ctx context.Context, path string, opts Options) (*Report, error) {
	in, closeIn, err := openInput(path, opts)
	if err != nil {
		return nil, err
	}
	defer closeIn()

	rep := &Report{File: path, Sidecar: SidecarMissing}
	want, sidecarErr := readSidecar(path)
	// Hashing the whole file costs a second pass over every byte: only
	// when there is a sidecar to compare with.
	var fileHash *asyncHash
	tee := in
	if want != "" {
		fileHash = newAsyncHash(sha256.New(), copyBufSize)
		defer fileHash.stop()
		tee = io.TeeReader(in, fileHash)
	}

	s := newScan()
	lr, err := layout.NewReader(tee)
	if err != nil {
		s.add(Problem{Severity: SeverityError, Message: fmt.Sprintf("%s: %v", path, err)})
	} else if err := s.run(ctx, lr); err != nil {
		return nil, fmt.Errorf("verify %s: %w", path, err)
	}
	// The sidecar covers the whole file, including what the pass did not
	// need (or could not read after damage).
	if want != "" {
		if _, err := io.CopyBuffer(io.Discard, tee, s.buf); err != nil {
			s.add(Problem{Severity: SeverityError, Message: fmt.Sprintf("read %s: %v", path, err)})
		}
	}
	var got string
	if fileHash != nil {
		got = hex.EncodeToString(fileHash.Sum())
	}
	rep.Sidecar = checkSidecar(s, path, want, sidecarErr, got)

	rep.Compression = s.comp
	rep.Entries = s.entries
	rep.Blobs = len(s.sizes)
	for _, n := range s.sizes {
		rep.Bytes += n
	}
	checkGraph(s, rep)
	rep.Problems = s.problems
	rep.OK = true
	for _, p := range rep.Problems {
		if p.Severity == SeverityError {
			rep.OK = false
		}
	}
	return rep, nil
}

func openInput(path string, opts Options) (io.Reader, func(), error) {
	if path == "-" {
		if opts.Stdin == nil {
			return nil, nil, errors.New("verify: file is \"-\" but no standard input was given")
		}
		return opts.Stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open bundle: %w: check the path", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open bundle: %w", err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("open bundle %s: it is a directory; verify checks an archive file (.tar, .tar.gz, .tar.zst)", path)
	}
	return bufio.NewReaderSize(f, copyBufSize), func() { f.Close() }, nil
}

// readSidecar returns the hex digest in FILE.sha256 (sha256sum format), ""
// with a nil error when there is none.
func readSidecar(path string) (string, error) {
	if path == "-" {
		return "", nil
	}
	f, err := os.Open(path + ".sha256")
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSidecar))
	if err != nil {
		return "", err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return "", errors.New("it is empty")
	}
	sum := strings.ToLower(fields[0])
	if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%q is not a sha256 in sha256sum format", fields[0])
	}
	return sum, nil
}

func checkSidecar(s *scan, path, want string, readErr error, got string) string {
	name := path + ".sha256"
	switch {
	case readErr != nil:
		s.add(Problem{Severity: SeverityError, Entry: name, Message: fmt.Sprintf("cannot use %s: %v: rewrite it with sha256sum or remove it", name, readErr)})
		return SidecarMismatch
	case want == "":
		if path != "-" {
			s.add(Problem{Severity: SeverityInfo, Entry: name, Message: fmt.Sprintf("no %s next to the bundle: the whole-file checksum was not compared", name)})
		}
		return SidecarMissing
	case want != got:
		s.add(Problem{Severity: SeverityError, Entry: name, Message: fmt.Sprintf("the file hashes to sha256 %s but %s says %s: the copy is damaged, copy it again", got, name, want)})
		return SidecarMismatch
	}
	return SidecarOK
}

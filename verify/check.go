package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/parts"
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
	// SidecarRebuilt: parts were missing or damaged and parity rebuilt
	// them; the bundle reads whole.
	SidecarRebuilt = "rebuilt"
)

// Problem is one finding of Check.
type Problem struct {
	Severity string `json:"severity"` // "error" | "warning" | "info"
	Code     string `json:"code"`     // what kind of problem: "damaged-blob", "missing-blob", ...
	Entry    string `json:"entry,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Offset   int64  `json:"offset,omitempty"` // in the archive file, where known
	Message  string `json:"message"`
}

// Report is what Check found. OK is false when any problem is an error.
type Report struct {
	File        string `json:"file"`
	Compression string `json:"compression"`
	Sidecar     string `json:"sidecar"` // "ok", "missing", "mismatch", "rebuilt"
	// Signature is SignatureVerified, SignatureUnchecked or SignatureNone.
	Signature string `json:"signature"`
	// Parts is what was found of a bundle carried in parts.
	Parts *parts.Status `json:"parts,omitempty"`
	// WrittenByBundle says the archive records the digest of its
	// index.json, which Check compared.
	WrittenByBundle bool      `json:"writtenByBundle"`
	Entries         int       `json:"entries"`
	Blobs           int       `json:"blobs"`
	Bytes           int64     `json:"bytes"`
	Manifests       int       `json:"manifests"`
	Images          []string  `json:"images,omitempty"`
	Problems        []Problem `json:"problems,omitempty"`
	OK              bool      `json:"ok"`

	shown map[string]int // problems kept per code, to bound the output
}

// maxPerCode is how many problems of one kind a report lists; the rest
// are counted in one more line, so that a hostile bundle cannot make a
// report of millions of lines.
const maxPerCode = 50

func (r *Report) add(p Problem) {
	if r.shown == nil {
		r.shown = map[string]int{}
	}
	r.shown[p.Code]++
	if r.shown[p.Code] <= maxPerCode {
		r.Problems = append(r.Problems, p)
	}
}

// summarise adds a line for each kind of problem listed only in part.
func (r *Report) summarise() {
	for _, code := range sortedCodes(r.shown) {
		if n := r.shown[code]; n > maxPerCode {
			sev := SeverityInfo
			for _, p := range r.Problems {
				if p.Code == code {
					sev = p.Severity
					break
				}
			}
			r.Problems = append(r.Problems, Problem{Severity: sev, Code: code, Message: fmt.Sprintf("%d more problems like the %s ones above are not listed", n-maxPerCode, code)})
		}
	}
	r.OK = true
	for _, p := range r.Problems {
		if p.Severity == SeverityError {
			r.OK = false
		}
	}
}

// maxSidecar bounds the FILE.sha256 read; a real one is one line.
const maxSidecar = 64 << 10

// copyBufSize is large so that hashing, not call overhead, sets the pace.
const copyBufSize = 1 << 20

// Check verifies the bundle at path ("-" for opts.Stdin) offline: it opens
// it as import does, then reads every blob against its name, checks the
// graph is complete, and compares the whole file with FILE.sha256 when
// there is one. The error return is for a bundle that cannot be opened at
// all (no such file); damage is reported in the Report.
func Check(ctx context.Context, path string, opts Options) (*Report, error) {
	signature, err := checkSignature(path, opts)
	if err != nil {
		return nil, err
	}
	if _, ok := parts.Locate(path); ok {
		return checkParts(ctx, path, signature, opts)
	}
	rep := &Report{File: path, Sidecar: SidecarMissing, Signature: signature}
	if path == "-" && opts.Stdin == nil {
		return nil, errors.New("verify: the file is \"-\" but there is no standard input")
	}
	if path != "-" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("open bundle: %w: check the path", err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("open bundle %s: it is a directory; verify checks an archive file (.tar, .tar.gz, .tar.zst)", path)
		}
	}
	want, whole, sidecarErr := expectedSum(ctx, path)
	b, err := Open(ctx, path, opts)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		rep.add(Problem{Severity: SeverityError, Code: "unreadable", Offset: offsetOf(err), Message: err.Error()})
	default:
		defer b.Close()
		if err := checkBlobs(ctx, b, rep); err != nil {
			return nil, err
		}
	}
	var got string
	if whole != nil {
		res := <-whole
		if res.err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.add(Problem{Severity: SeverityError, Code: "unreadable", Message: fmt.Sprintf("read %s: %v", path, res.err)})
		}
		got = res.sum
	}
	rep.Sidecar = checkSidecar(rep, path, want, sidecarErr, got)
	rep.summarise()
	return rep, nil
}

// checkBlobs reads every blob against its name, then checks the graph.
func checkBlobs(ctx context.Context, b *Bundle, rep *Report) error {
	rep.Compression = string(b.Compression)
	rep.WrittenByBundle = b.Written()
	damaged := map[digest.Digest]bool{}
	buf := make([]byte, copyBufSize)
	complete := true
	canonical := func(e layout.Entry) {
		if b.Written() && !e.Canonical && !b.Spooled {
			rep.add(Problem{Severity: SeverityError, Code: "damaged-header", Entry: e.Name, Offset: e.Header,
				Message: fmt.Sprintf("the tar header of %s at tar offset %d is not as bundle writes it: the bundle is damaged; copy it again", e.Name, e.Header)})
		}
	}
	for _, e := range b.meta {
		canonical(e)
	}
	err := b.Blobs(ctx, func(e layout.Entry, d digest.Digest, r io.Reader) error {
		canonical(e)
		_, err := io.CopyBuffer(io.Discard, NewReader(r, ocispec.Descriptor{Digest: d, Size: e.Size}), buf)
		if errors.Is(err, ErrMismatch) {
			damaged[d] = true
			rep.add(Problem{Severity: SeverityError, Code: "damaged-blob", Entry: e.Name, Digest: d.String(), Offset: e.Header,
				Message: fmt.Sprintf("%s (tar offset %d) does not hash to its name: %v", e.Name, e.Header, err)})
			return nil
		}
		return err
	})
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		complete = false
		rep.add(Problem{Severity: SeverityError, Code: "unreadable", Offset: offsetOf(err), Message: err.Error()})
	}
	rep.Entries = len(b.Present) + 2
	rep.Blobs = len(b.Present)
	for _, n := range b.Present {
		rep.Bytes += n
	}
	if !complete {
		rep.add(Problem{Severity: SeverityInfo, Code: "not-checked", Message: "graph completeness not checked: the archive could not be read to its end"})
		return nil
	}
	checkGraph(b, damaged, rep)
	return nil
}

// offsetOf is where in the archive file a read failed, 0 when unknown.
func offsetOf(err error) int64 {
	var at interface{ ArchiveOffset() int64 }
	if errors.As(err, &at) {
		return at.ArchiveOffset()
	}
	return 0
}

type hashResult struct {
	sum string
	err error
}

// hashFile hashes the whole file on its own goroutine, beside the check:
// the sidecar covers every byte, also those the check does not read.
func hashFile(ctx context.Context, path string) <-chan hashResult {
	return hashSlices(ctx, path, math.MaxInt64)
}

// ctxReader stops a long read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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

func checkSidecar(rep *Report, path, want string, readErr error, got string) string {
	name := path + ".sha256"
	switch {
	case readErr != nil:
		rep.add(Problem{Severity: SeverityError, Code: "sidecar", Entry: name, Message: fmt.Sprintf("cannot use %s: %v: rewrite it with sha256sum or remove it", name, readErr)})
		return SidecarMismatch
	case want == "":
		if path != "-" {
			rep.add(Problem{Severity: SeverityInfo, Code: "sidecar", Entry: name, Message: fmt.Sprintf("no %s next to the bundle: the whole-file checksum was not compared", name)})
		}
		return SidecarMissing
	case got == "":
		return SidecarMissing
	case want != got:
		rep.add(Problem{Severity: SeverityError, Code: "sidecar", Entry: name, Message: sumMismatch(path, name, want, got)})
		return SidecarMismatch
	}
	return SidecarOK
}

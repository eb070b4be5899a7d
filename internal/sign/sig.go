package sign

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"
)

// SigSuffix names the signature beside the file it signs.
const SigSuffix = ".sig"

// maxSigned bounds what is signed or checked: a sidecar, a few KiB.
const maxSigned = 4 << 20

// Errors a check returns, wrapped with the file names.
var (
	ErrNoSignature  = errors.New("no signature")
	ErrBadSignature = errors.New("signature does not verify")
)

// SignFile signs the file at path and writes path.sig, through a .partial
// file and a rename.
func SignFile(path string, s signature.Signer) (string, error) {
	data, err := readBounded(path)
	if err != nil {
		return "", err
	}
	sig, err := s.SignMessage(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("signing %s: %w", path, err)
	}
	out := path + SigSuffix
	tmp := out + ".partial"
	if err := os.WriteFile(tmp, []byte(base64.StdEncoding.EncodeToString(sig)), 0o644); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", out, err)
	}
	return out, nil
}

// VerifyFile checks path.sig over path with v.
func VerifyFile(path string, v signature.Verifier) error {
	sigPath := path + SigSuffix
	raw, err := os.ReadFile(sigPath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s is not there; the bundle was not signed, or its signature was lost on the way", ErrNoSignature, sigPath)
	}
	if err != nil {
		return fmt.Errorf("reading signature %s: %w", sigPath, err)
	}
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil {
		// cosign accepts a raw signature too.
		sig = raw
	}
	data, err := readBounded(path)
	if err != nil {
		return err
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%w: %s over %s: made by another key, or %s was changed after signing (%v)", ErrBadSignature, sigPath, path, path, err)
	}
	return nil
}

// Signed says path has a signature beside it.
func Signed(path string) bool {
	_, err := os.Stat(path + SigSuffix)
	return err == nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s, the signed checksum file, is not there", ErrNoSignature, path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSigned+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxSigned {
		return nil, fmt.Errorf("%s is larger than %d MiB: not a checksum file", path, maxSigned>>20)
	}
	return data, nil
}

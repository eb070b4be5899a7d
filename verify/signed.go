package verify

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/sign"
)

// Signature states in a Report or an Inventory.
const (
	SignatureVerified  = "verified"
	SignatureUnchecked = "signed, not checked (pass --key)"
	SignatureNone      = "none"
)

// sidecarOf is the checksum file that covers the bundle at path, "" for
// standard input.
func sidecarOf(path string) string {
	if base, ok := parts.Locate(path); ok {
		return parts.SidecarName(base)
	}
	if path == "-" {
		return ""
	}
	return path + parts.SidecarSuffix
}

// checkSignature checks FILE.sha256.sig with opts.Key, before anything
// else is read; without a key it only says whether there is one.
func checkSignature(path string, opts Options) (string, error) {
	sidecar := sidecarOf(path)
	if opts.Key == "" {
		if sidecar != "" && sign.Signed(sidecar) {
			return SignatureUnchecked, nil
		}
		return SignatureNone, nil
	}
	if sidecar == "" {
		return "", errors.New("--key: a bundle read from standard input has no signature to check; give its file")
	}
	v, err := sign.LoadVerifier(opts.Key)
	if err != nil {
		return "", err
	}
	if err := sign.VerifyFile(sidecar, v); err != nil {
		return "", fmt.Errorf("signature check failed, nothing else was done: %w", err)
	}
	return SignatureVerified, nil
}

// Authenticate is what import runs first with --key: the signature over
// FILE.sha256, then the bundle against it. For one file that is its
// sha256. For parts it is that FILE.sha256 lists them and that no more are
// lost than parity rebuilds: Open, which import runs next and before any
// push, hashes every part against the same (now authenticated) list and
// refuses or rebuilds a part that differs, so hashing them here too would
// only read the whole bundle once more. An error means nothing of the
// bundle may be used.
func Authenticate(ctx context.Context, path string, opts Options) error {
	if _, err := checkSignature(path, opts); err != nil {
		return err
	}
	if _, ok := parts.Locate(path); ok {
		st, err := parts.InspectSizes(ctx, path)
		if err != nil {
			return err
		}
		if !st.Sidecar {
			return fmt.Errorf("%s does not list the parts of the bundle: it is not the checksum file bundle signs", parts.SidecarName(st.Base))
		}
		return st.CheckParity()
	}
	want, got, err := expectedSum(ctx, path)
	if err != nil || want == "" {
		return fmt.Errorf("%s.sha256 is signed but cannot be used (%v): copy it again", path, err)
	}
	res := <-got
	if res.err != nil {
		return fmt.Errorf("read %s: %w", path, res.err)
	}
	if res.sum != want {
		return fmt.Errorf("%s does not match the signed %s.sha256: %s; it was changed after signing or damaged", path, path, sumMismatch(path, path+".sha256", want, res.sum))
	}
	return nil
}

// mediaOf fills what inspect shows of parts and signature.
func mediaOf(b *Bundle, path string) (*parts.Status, string) {
	sig := SignatureNone
	if s := sidecarOf(path); s != "" {
		if _, err := os.Stat(s + sign.SigSuffix); err == nil {
			sig = SignatureUnchecked
		}
	}
	return b.Parts, sig
}

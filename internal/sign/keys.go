package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// maxKeyFile bounds a key file read.
const maxKeyFile = 64 << 10

// PassFunc returns the password of an encrypted key file; it is called
// only for an encrypted one.
type PassFunc func() ([]byte, error)

// LoadSigner reads a private key: a file 'cosign generate-key-pair' wrote
// (encrypted, its password from pass), or an unencrypted PKCS#8 PEM key
// (ECDSA P-256 or Ed25519).
func LoadSigner(path string, pass PassFunc) (signature.Signer, error) {
	data, err := readKey(path)
	if err != nil {
		return nil, err
	}
	var pf cryptoutils.PassFunc
	if pass != nil {
		pf = func(bool) ([]byte, error) { return pass() }
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(data, pf)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w (want a cosign key file and its password, from COSIGN_PASSWORD or typed, or an unencrypted PKCS#8 PEM key)", path, err)
	}
	if err := supported(publicOf(priv)); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return s, nil
}

// LoadVerifier reads a PEM public key (cosign.pub, or one from openssl).
func LoadVerifier(path string) (signature.Verifier, error) {
	data, err := readKey(path)
	if err != nil {
		return nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w (want a PEM public key such as cosign.pub)", path, err)
	}
	if err := supported(pub); err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	// The hash cosign verify-blob uses for a key: SHA-256.
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return v, nil
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	data := make([]byte, maxKeyFile+1)
	n, _ := f.Read(data)
	if n > maxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d KiB: not a PEM key", path, maxKeyFile>>10)
	}
	return data[:n], nil
}

func publicOf(priv crypto.PrivateKey) crypto.PublicKey {
	if s, ok := priv.(crypto.Signer); ok {
		return s.Public()
	}
	return nil
}

// supported accepts the keys cosign generates and the issue names.
func supported(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on %s: want P-256", k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	}
	return errors.New("unsupported key type: want ECDSA P-256 or Ed25519")
}

// Encrypted says the key file at path needs a password: a program asks
// for it before its progress display takes the terminal.
func Encrypted(path string) (bool, error) {
	data, err := readKey(path)
	if err != nil {
		return false, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return false, fmt.Errorf("signing key %s: not a PEM file", path)
	}
	return strings.Contains(block.Type, "ENCRYPTED") || x509.IsEncryptedPEMBlock(block), nil //nolint:staticcheck // legacy PEM encryption is still read
}

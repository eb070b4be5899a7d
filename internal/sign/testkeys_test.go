package sign

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

const testPassword = "correct horse"

// keyKind is one kind of key a site may sign with.
type keyKind struct {
	name string
	gen  func(t *testing.T, dir string) (priv, pub string)
}

var keyKinds = []keyKind{
	{"cosign encrypted", func(t *testing.T, dir string) (string, string) {
		// What 'cosign generate-key-pair' writes: ECDSA P-256, encrypted
		// with scrypt and secretbox as ENCRYPTED SIGSTORE PRIVATE KEY.
		priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte(testPassword)))
		if err != nil {
			t.Fatal(err)
		}
		return writeKeys(t, dir, "cosign", priv, pub)
	}},
	{"PKCS#8 ECDSA P-256", func(t *testing.T, dir string) (string, string) {
		priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return writeKeys(t, dir, "ecdsa", priv, pub)
	}},
	{"PKCS#8 Ed25519", func(t *testing.T, dir string) (string, string) {
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := cryptoutils.MarshalPrivateKeyToPEM(sk)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := cryptoutils.MarshalPublicKeyToPEM(pk)
		if err != nil {
			t.Fatal(err)
		}
		return writeKeys(t, dir, "ed25519", priv, pub)
	}},
}

func writeKeys(t *testing.T, dir, name string, priv, pub []byte) (string, string) {
	t.Helper()
	p, q := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(p, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(q, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, q
}

func staticPass() ([]byte, error) { return []byte(testPassword), nil }

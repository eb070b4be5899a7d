package main

import (
	"crypto/elliptic"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func TestMediaFlagsAreCheckedAsUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown medium", []string{"export", "--split-size", "floppy", "r/a:1"}, "--split-size"},
		{"parity without split", []string{"export", "--parity", "2", "r/a:1"}, "--parity needs --split-size"},
		{"too much parity", []string{"export", "--split-size", "dvd", "--parity", "300", "r/a:1"}, "--parity 300"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runBundle(t, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 with %q", code, stderr, tt.want)
			}
		})
	}
}

func TestRepairOfASetPastItsParityExitsOneNamingTheParts(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "b.tar")
	// A sidecar for two parts and no parity; both parts lost.
	os.WriteFile(base+".sha256", []byte("# bundle parts v1 size=20 part-size=10 data=2 parity=0 shards=0\n"+
		strings.Repeat("a", 64)+"  b.tar.000\n"+strings.Repeat("b", 64)+"  b.tar.001\n"), 0o644)
	code, _, stderr := runBundle(t, "repair", base+".sha256")
	if code != exitFailed || !strings.Contains(stderr, "b.tar.000") || !strings.Contains(stderr, "b.tar.001") {
		t.Fatalf("exit %d, stderr %q; want exit 1 naming both parts", code, stderr)
	}
}

func TestVerifyKeyWithoutSignatureExitsOne(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "b.tar")
	os.WriteFile(file, []byte("not looked at"), 0o644)
	os.WriteFile(file+".sha256", []byte(strings.Repeat("a", 64)+"  b.tar\n"), 0o644)
	pub := filepath.Join(dir, "k.pub")
	os.WriteFile(pub, []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"), 0o644)
	code, _, stderr := runBundle(t, "verify", "--key", pub, file)
	if code != exitFailed || !strings.Contains(stderr, "no signature") {
		t.Fatalf("exit %d, stderr %q; want exit 1 saying there is no signature", code, stderr)
	}
}

func TestExportWithAWrongKeyPasswordStopsBeforeAnyFetch(t *testing.T) {
	dir := t.TempDir()
	priv, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("right")))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "cosign.key")
	os.WriteFile(key, priv, 0o600)
	t.Setenv("COSIGN_PASSWORD", "wrong")
	// No registry listens on port 1: reaching it would say so.
	code, _, stderr := runBundle(t, "export", "--quiet", "--plain-http", "--sign-key", key, "-o", filepath.Join(dir, "b.tar.zst"), "127.0.0.1:1/x:1")
	if code != exitFailed || !strings.Contains(stderr, "decryption failed") || strings.Contains(stderr, "unreachable") {
		t.Fatalf("exit %d, stderr %q; want exit 1 on the key, before the registry", code, stderr)
	}
}

package sign

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSignAndVerifyEachKindOfKey(t *testing.T) {
	for _, k := range keyKinds {
		t.Run(k.name, func(t *testing.T) {
			dir := t.TempDir()
			priv, pub := k.gen(t, dir)
			_, otherPub := keyKinds[1].gen(t, t.TempDir())
			file := filepath.Join(dir, "b.tar.zst.sha256")
			if err := os.WriteFile(file, []byte("0123  b.tar.zst.000\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := LoadSigner(priv, staticPass)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := SignFile(file, s); err != nil {
				t.Fatal(err)
			}
			v, err := LoadVerifier(pub)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyFile(file, v); err != nil {
				t.Fatalf("the signature does not verify: %v", err)
			}
			ov, err := LoadVerifier(otherPub)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyFile(file, ov); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("verified with another key: %v", err)
			}

			if err := os.WriteFile(file, []byte("0124  b.tar.zst.000\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := VerifyFile(file, v); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("an edited file verifies: %v", err)
			}
			os.Remove(file + SigSuffix)
			if err := VerifyFile(file, v); !errors.Is(err, ErrNoSignature) {
				t.Fatalf("a missing signature = %v, want ErrNoSignature", err)
			}
		})
	}
}

func TestEncryptedKeyNeedsItsPassword(t *testing.T) {
	priv, _ := keyKinds[0].gen(t, t.TempDir())
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"COSIGN_PASSWORD right", map[string]string{"COSIGN_PASSWORD": testPassword}, true},
		{"COSIGN_PASSWORD wrong", map[string]string{"COSIGN_PASSWORD": "nope"}, false},
		// Tests run without a terminal: no prompt, a clear error.
		{"no password, no terminal", map[string]string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			_, err := LoadSigner(priv, CosignPassword(lookup))
			if (err == nil) != tt.ok {
				t.Fatalf("LoadSigner = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestUnsupportedKeysAreRefused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "junk.key")
	os.WriteFile(p, []byte("not a key"), 0o600)
	if _, err := LoadSigner(p, staticPass); err == nil {
		t.Fatal("junk loaded as a signing key")
	}
	if _, err := LoadVerifier(p); err == nil {
		t.Fatal("junk loaded as a public key")
	}
}

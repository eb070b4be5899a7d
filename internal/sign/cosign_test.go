package sign

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/cosign/v2/cmd/cosign/cli/options"
	"github.com/sigstore/cosign/v2/cmd/cosign/cli/verify"
)

// cosignVerifyBlob runs the code of 'cosign verify-blob --key pub
// --signature sig --insecure-ignore-tlog blob' as a library call: the
// command a site's security team runs on a bundle.
func cosignVerifyBlob(pub, sig, blob string) error {
	cmd := &verify.VerifyBlobCmd{
		KeyOpts: options.KeyOpts{KeyRef: pub},
		SigRef:  sig,
		// --insecure-ignore-tlog, and nothing else: what the README and
		// the issue tell a site to run.
		IgnoreTlog: true,
	}
	return cmd.Exec(context.Background(), blob)
}

func TestCosignVerifyBlobAcceptsOurSignature(t *testing.T) {
	for _, k := range keyKinds {
		t.Run(k.name, func(t *testing.T) {
			dir := t.TempDir()
			priv, pub := k.gen(t, dir)
			_, otherPub := keyKinds[1].gen(t, t.TempDir())
			file := filepath.Join(dir, "b.tar.zst.sha256")
			os.WriteFile(file, []byte("# bundle parts v1 size=3 part-size=1 data=3 parity=0 shards=0\nab  b.tar.zst.000\n"), 0o644)
			s, err := LoadSigner(priv, staticPass)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := SignFile(file, s)
			if err != nil {
				t.Fatal(err)
			}
			if err := cosignVerifyBlob(pub, sig, file); err != nil {
				t.Fatalf("cosign verify-blob refuses the signature: %v", err)
			}
			if err := cosignVerifyBlob(otherPub, sig, file); err == nil {
				t.Fatal("cosign verify-blob accepts the signature with another key")
			}
			os.WriteFile(file, []byte("edited\n"), 0o644)
			if err := cosignVerifyBlob(pub, sig, file); err == nil {
				t.Fatal("cosign verify-blob accepts an edited file")
			}
		})
	}
}

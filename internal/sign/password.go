package sign

import (
	"errors"
	"os"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"golang.org/x/term"
)

// CosignPassword returns the password as cosign finds it: COSIGN_PASSWORD
// when set (even empty), else a prompt when stdin is a terminal. lookup is
// os.LookupEnv in the program, a map in tests.
func CosignPassword(lookup func(string) (string, bool)) PassFunc {
	return func() ([]byte, error) {
		if pw, ok := lookup("COSIGN_PASSWORD"); ok {
			return []byte(pw), nil
		}
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			return nil, errors.New("the key is encrypted: set COSIGN_PASSWORD, or run on a terminal to be asked")
		}
		return cryptoutils.GetPasswordFromStdIn(false)
	}
}

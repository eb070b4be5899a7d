package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/parts"
	"github.com/bundle-dev/bundle/internal/sign"
)

// mediaFlags are export's flags for carrying a bundle on media.
func mediaFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "split-size", Usage: "write FILE.000, FILE.001, … of at most `SIZE` each (700MiB, 4.7GB, or fat32, dvd, dvd-dl, bd25, bd50)"},
		&cli.IntFlag{Name: "parity", Usage: "with --split-size, write `N` parity parts FILE.p000, …: any N lost or damaged parts can be rebuilt"},
		&cli.StringFlag{Name: "sign-key", Usage: "sign FILE.sha256 into FILE.sha256.sig with this private `KEY` (cosign generate-key-pair's, password from COSIGN_PASSWORD or a prompt, or PKCS#8 PEM)", TakesFile: true},
	}
}

func keyFlag() cli.Flag {
	return &cli.StringFlag{Name: "key", Usage: "public `KEY` (cosign.pub): FILE.sha256.sig must verify with it before anything else is done", TakesFile: true}
}

// splitSize parses --split-size; 0 when not given.
func splitSize(c *cli.Context) (int64, error) {
	if !c.IsSet("split-size") {
		if c.Int("parity") != 0 {
			return 0, usagef(c, "--parity needs --split-size: parity parts rebuild lost parts")
		}
		return 0, nil
	}
	n, err := parts.ParseSize(c.String("split-size"))
	if err != nil {
		return 0, usagef(c, "--split-size: %v", err)
	}
	if p := c.Int("parity"); p < 0 || p >= parts.MaxShards/2 {
		return 0, usagef(c, "--parity %d: want 0 to %d", p, parts.MaxShards/2-1)
	}
	return n, nil
}

// keyPassword finds an encrypted key's password as cosign does.
func keyPassword() sign.PassFunc { return sign.CosignPassword(os.LookupEnv) }

// signPassword asks for the --sign-key password now, if the key is
// encrypted: asked later, the prompt would be hidden under the progress
// bars.
func signPassword(c *cli.Context) (sign.PassFunc, error) {
	key := c.String("sign-key")
	if key == "" {
		return nil, nil
	}
	if enc, err := sign.Encrypted(key); err != nil || !enc {
		return keyPassword(), nil // export reports a key it cannot read
	}
	pw, err := keyPassword()()
	if err != nil {
		return nil, fmt.Errorf("--sign-key %s: %w", key, err)
	}
	return func() ([]byte, error) { return pw, nil }, nil
}

func partsSummary(st *parts.Status) string {
	var data, parity int
	var bad []string
	for _, p := range st.Parts {
		if p.Parity {
			parity++
		} else {
			data++
		}
		if p.State != parts.StateOK && p.State != parts.StateUnchecked {
			bad = append(bad, p.Name+" "+p.State)
		}
	}
	s := fmt.Sprintf("%d data, %d parity", data, parity)
	if len(bad) > 0 {
		s += "; " + strings.Join(bad, ", ")
	}
	return s
}

package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/parts"
)

func repairCommand(s streams, parseOnly bool) *cli.Command {
	return &cli.Command{
		Name:      "repair",
		Usage:     "rebuild lost or damaged parts of a split bundle from its parity parts",
		ArgsUsage: "FILE.sha256 (or FILE.000, any part)",
		Flags:     []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			file, err := oneFile(c)
			if err != nil || parseOnly {
				return err
			}
			st, err := parts.Repair(c.Context, file)
			if st != nil {
				repairSummary(s.err, st)
				if c.Bool("json") {
					if jerr := writeJSON(s.out, st); err == nil {
						err = jerr
					}
				}
			}
			if err != nil {
				return fmt.Errorf("repair %s: %w", file, err)
			}
			return nil
		},
	}
}

func repairSummary(w io.Writer, st *parts.Status) {
	for _, p := range st.Parts {
		if p.State != parts.StateOK {
			fmt.Fprintf(w, "%s: %s %s\n", p.Name, p.State, p.Problem)
		}
	}
	switch r := st.Rebuilt(); {
	case len(r) > 0:
		fmt.Fprintf(w, "rebuilt %d part(s) of %s; every part now matches %s\n", len(r), st.Base, parts.SidecarName(st.Base))
	case len(st.Bad()) == 0:
		fmt.Fprintf(w, "%s: all %d parts match %s, nothing to repair\n", st.Base, len(st.Parts), parts.SidecarName(st.Base))
	}
}

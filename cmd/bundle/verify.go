package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/internal/safetext"
	"github.com/bundle-dev/bundle/verify"
)

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout"}
}

func verifyCommand(s streams, parseOnly bool) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a bundle offline: digests, sizes, completeness, tar safety, checksum file, signature",
		ArgsUsage: "FILE (or FILE.000, any part, FILE.sha256)",
		Flags:     []cli.Flag{jsonFlag(), keyFlag()},
		Action: func(c *cli.Context) error {
			file, err := oneFile(c)
			if err != nil || parseOnly {
				return err
			}
			rep, err := verify.Check(c.Context, file, verify.Options{Stdin: s.in, Key: c.String("key"), Notice: notice(c, s.err)})
			if err != nil {
				return fmt.Errorf("verify %s: %w", file, err)
			}
			verifySummary(s.err, rep)
			if c.Bool("json") {
				if err := writeJSON(s.out, rep); err != nil {
					return err
				}
			}
			if !rep.OK {
				return fmt.Errorf("%s is damaged or incomplete (%d problem(s) above): export it again or copy it again from the source", file, len(rep.Problems))
			}
			return nil
		},
	}
}

func inspectCommand(s streams, parseOnly bool) *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "list what a bundle holds: images, platforms, referrer trees, parts, signature",
		ArgsUsage: "FILE (or FILE.000, any part, FILE.sha256)",
		Flags: []cli.Flag{jsonFlag(),
			&cli.StringFlag{Name: "receipt", Usage: "also write the bundle's receipt to `FILE`: a base for bundle export --since", TakesFile: true},
		},
		Action: func(c *cli.Context) error {
			file, err := oneFile(c)
			if err != nil || parseOnly {
				return err
			}
			inv, err := verify.Inspect(c.Context, file, verify.Options{Stdin: s.in})
			if err != nil {
				return fmt.Errorf("inspect %s: %w", file, err)
			}
			if out := c.String("receipt"); out != "" {
				r, err := inv.Receipt()
				if err == nil {
					err = verify.WriteReceipt(out, r)
				}
				if err != nil {
					return fmt.Errorf("inspect %s: %w", file, err)
				}
			}
			if c.Bool("json") {
				return writeJSON(s.out, inv)
			}
			if err := inv.WriteText(s.out); err != nil {
				return fmt.Errorf("inspect %s: writing the listing: %w", file, err)
			}
			return nil
		},
	}
}

func oneFile(c *cli.Context) (string, error) {
	a, err := args(c, 1, "FILE (the bundle)")
	if err != nil {
		return "", err
	}
	if len(a) > 1 {
		return "", usagef(c, "one FILE at a time, got %d", len(a))
	}
	return a[0], nil
}

// problemLine is one problem on one line: the message, which names the
// entry, digest or offset when it matters, and where only when it does not.
func problemLine(p verify.Problem) string {
	where := ""
	switch {
	case p.Entry != "" && !strings.Contains(p.Message, p.Entry):
		where = p.Entry
	case p.Digest != "" && !strings.Contains(p.Message, p.Digest):
		where = p.Digest
	}
	if p.Offset > 0 && !strings.Contains(p.Message, "offset") {
		where = strings.TrimSpace(fmt.Sprintf("%s (offset %d)", where, p.Offset))
	}
	if where == "" {
		return p.Message
	}
	return where + ": " + p.Message
}

func verifySummary(w io.Writer, r *verify.Report) {
	for _, p := range r.Problems {
		fmt.Fprintf(w, "%s: %s\n", p.Severity, safetext.String(problemLine(p)))
	}
	state := "OK"
	if !r.OK {
		state = "FAILED"
	}
	fmt.Fprintf(w, "%s: %s, %s; %d entries, %d blobs, %d manifests, %s; %d image(s)\n",
		state, safetext.String(r.File), r.Compression, r.Entries, r.Blobs, r.Manifests, progress.Bytes(r.Bytes), len(r.Images))
	if r.Sidecar != "" && r.File != "-" {
		fmt.Fprintf(w, "checksum file %s.sha256: %s\n", safetext.String(r.File), r.Sidecar)
	}
	if r.Parts != nil {
		fmt.Fprintf(w, "parts: %s\n", partsSummary(r.Parts))
	}
	if r.Signature != "" && r.Signature != verify.SignatureNone {
		fmt.Fprintf(w, "signature: %s\n", r.Signature)
	}
}

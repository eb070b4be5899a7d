package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/safetext"
)

// Exit status, DESIGN.md "The command line".
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	commandName = "bundle"
)

type streams struct {
	in       io.Reader
	out, err io.Writer
}

// usageError is bad usage: exit 2 and a pointer to --help.
type usageError struct {
	cmd string
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(c *cli.Context, format string, args ...any) error {
	return &usageError{cmd: subcommand(c), err: fmt.Errorf(format, args...)}
}

// subcommand names the command c runs, "" at the top level.
func subcommand(c *cli.Context) string {
	if c.Command == nil || c.Command.Name == commandName {
		return ""
	}
	return c.Command.Name
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, s streams) int {
	wrapHelp()
	app := newApp(s, false)
	return exitCode(app.RunContext(ctx, hoistFlags(app, args)), s.err)
}

// hoistFlags moves the flags given after a command's arguments in front of
// them, keeping their order: urfave/cli v2 stops parsing flags at the first
// argument, and people (and DESIGN.md) write "bundle import b.tar.zst
// --target registry.internal". After "--" everything is an argument.
func hoistFlags(app *cli.App, args []string) []string {
	if len(args) < 3 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	head := 2 // program and command; subcommands too (cache ls)
	for head < len(args) {
		sub := cmd.Command(args[head])
		if sub == nil {
			break
		}
		cmd, head = sub, head+1
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, positional []string
	rest := args[head:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			positional = append(positional, rest[i:]...)
			i = len(rest)
		case a == "-" || !strings.HasPrefix(a, "-"):
			positional = append(positional, a)
		default:
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				i++
				flags = append(flags, rest[i])
			}
		}
	}
	out := append(slices.Clone(args[:head]), flags...)
	return append(out, positional...)
}

func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		help := commandName + " --help"
		if ue.cmd != "" {
			help = commandName + " " + ue.cmd + " --help"
		}
		fmt.Fprintf(stderr, "%s: %s\nRun '%s' for usage.\n", commandName, safetext.String(ue.err.Error()), help)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "%s: %s\n", commandName, safetext.String(err.Error()))
		return exitFailed
	}
}

// helpWidth is the widest line --help prints, for an 100-column terminal.
const helpWidth = 100

// wrapHelp makes urfave/cli wrap help text at helpWidth; its printer is a
// package variable, so this sets it once for the process.
func wrapHelp() {
	wrapOnce.Do(func() {
		cli.HelpPrinter = func(w io.Writer, templ string, data any) {
			cli.HelpPrinterCustom(w, templ, data, map[string]any{"wrapAt": func() int { return helpWidth - 4 }})
		}
	})
}

var wrapOnce sync.Once

// newApp builds the command tree. With parseOnly, every command checks its
// flags and arguments and returns before doing anything: the README test
// uses that to keep the documented commands valid.
func newApp(s streams, parseOnly bool) *cli.App {
	onUsage := func(c *cli.Context, err error, _ bool) error {
		return &usageError{cmd: subcommand(c), err: err}
	}
	var app *cli.App
	commands := []*cli.Command{
		exportCommand(s, parseOnly),
		importCommand(s, parseOnly),
		verifyCommand(s, parseOnly),
		inspectCommand(s, parseOnly),
		serveCommand(s, parseOnly),
		cacheCommand(s, parseOnly),
		versionCommand(s),
		completionCommand(s, func() *cli.App { return app }),
	}
	withExamples(commands)
	for _, c := range commands {
		c.OnUsageError = onUsage
	}
	app = &cli.App{
		Name:                 commandName,
		Usage:                "carry container images and their signatures, SBOMs and attestations across an air gap",
		Version:              buildVersion(),
		Commands:             commands,
		Reader:               s.in,
		Writer:               s.out,
		ErrWriter:            s.err,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		OnUsageError:         onUsage,
		// Errors come back to run, which alone decides the exit status.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef(c, "unknown command %q", c.Args().First())
			}
			_ = cli.ShowAppHelp(c)
			return usagef(c, "no command given")
		},
	}
	return app
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// args returns the positional arguments. hoistFlags has moved the flags
// given among them to the front; what still looks like a flag here came
// after "--" or from a caller that skipped it, and a silently ignored
// "-o FILE" would write somewhere the user did not ask for.
func args(c *cli.Context, min int, what string) ([]string, error) {
	a := c.Args().Slice()
	for _, x := range a {
		if strings.HasPrefix(x, "-") && x != "-" {
			return nil, usagef(c, "flag %s after %s: put flags before the arguments", x, what)
		}
	}
	if len(a) < min {
		return nil, usagef(c, "missing %s", what)
	}
	return a, nil
}

func oneOf(c *cli.Context, flag string, allowed ...string) error {
	v := c.String(flag)
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return usagef(c, "--%s %q: want one of %s", flag, v, strings.Join(allowed, ", "))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	return nil
}

// notice prints a human notice to stderr unless --quiet.
func notice(c *cli.Context, w io.Writer) func(string, ...any) {
	if c.Bool("quiet") {
		return func(string, ...any) {}
	}
	return func(format string, a ...any) {
		fmt.Fprintf(w, "note: %s\n", safetext.String(fmt.Sprintf(format, a...)))
	}
}

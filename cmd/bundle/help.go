package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// examples are shown under each command's help: what a platform engineer
// types first, on both sides of the air gap.
var examples = map[string]string{
	"export": `Examples:
  bundle export -o app.tar.zst reg.example/team/app:1.0
  bundle export --platform linux/amd64 -o app.tar.zst reg.example/team/app:1.0
  bundle export --no-referrers --compress gzip -o app.tar.gz reg.example/team/app:1.0`,
	"import": `Required: --target HOST[:PORT][/PREFIX].

Examples:
  bundle import --target reg.internal:5000/mirror app.tar.zst
  bundle import --dry-run --target reg.internal:5000 app.tar.zst
  zstd -dc app.tar.zst | bundle import --target reg.internal:5000 -`,
	"verify": `Examples:
  bundle verify app.tar.zst
  bundle verify --json app.tar.zst > report.json`,
	"inspect": `Examples:
  bundle inspect app.tar.zst
  bundle inspect --json app.tar.zst`,
	"serve": `Examples:
  bundle serve --addr 127.0.0.1:5000 app.tar.zst
  bundle serve --prefix mirror base.tar.zst apps.tar.zst
  bundle serve --addr 0.0.0.0:5000 --htpasswd /etc/bundle/htpasswd \
    --tls-cert /etc/bundle/cert.pem --tls-key /etc/bundle/key.pem app.tar.zst
  bundle serve --dir /var/lib/bundle-registry --addr 127.0.0.1:5000`,
	"version": `Examples:
  bundle version`,
	"completion": `Examples:
  bundle completion bash > /etc/bash_completion.d/bundle
  bundle completion zsh > "${fpath[1]}/_bundle"
  bundle completion fish > ~/.config/fish/completions/bundle.fish`,
	"cache": `Examples:
  bundle cache ls
  bundle cache prune --older-than 720h`,
}

// withExamples adds each command's examples to its help.
func withExamples(cmds []*cli.Command) {
	for _, c := range cmds {
		if ex, ok := examples[c.Name]; ok {
			c.Description = strings.TrimSpace(c.Description + "\n\n" + ex)
		}
	}
}

func versionCommand(s streams) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the Go it was built with and the platform",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef(c, "version takes no arguments")
			}
			writeVersion(s.out)
			return nil
		},
	}
}

func writeVersion(w io.Writer) {
	fmt.Fprintf(w, "bundle %s\n", buildVersion())
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, st := range bi.Settings {
			if st.Key == "vcs.revision" || st.Key == "vcs.time" {
				fmt.Fprintf(w, "%s %s\n", st.Key, st.Value)
			}
		}
	}
	fmt.Fprintf(w, "go %s %s/%s\n", strings.TrimPrefix(runtime.Version(), "go"), runtime.GOOS, runtime.GOARCH)
}

func completionCommand(s streams, app func() *cli.App) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, "the shell (bash, zsh or fish)")
			if err != nil {
				return err
			}
			switch a[0] {
			case "bash":
				_, err = io.WriteString(s.out, bashCompletion)
			case "zsh":
				_, err = io.WriteString(s.out, zshCompletion)
			case "fish":
				var script string
				if script, err = app().ToFishCompletion(); err == nil {
					_, err = io.WriteString(s.out, script)
				}
			default:
				return usagef(c, "shell %q: want bash, zsh or fish", a[0])
			}
			return err
		},
	}
}

// The bash and zsh scripts ask bundle itself for the words
// (--generate-bash-completion, urfave/cli's protocol).
const bashCompletion = `# bash completion for bundle
_bundle() {
  local cur words
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:$((COMP_CWORD-1))}" --generate-bash-completion 2>/dev/null)
  COMPREPLY=($(compgen -W "${words}" -- "${cur}"))
  [ ${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "${cur}"))
  return 0
}
complete -o filenames -F _bundle bundle
`

const zshCompletion = `#compdef bundle
_bundle() {
  local -a opts
  opts=("${(@f)$(${words[1]} ${words[@]:1:$((CURRENT-2))} --generate-bash-completion 2>/dev/null)}")
  if [[ -n "${opts[1]}" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _bundle bundle
`

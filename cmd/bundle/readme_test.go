package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestREADMECommandsAreValid keeps the README honest: every `bundle ...`
// line in its code blocks must parse as an invocation (known command, known
// flags, required arguments present). It runs everywhere, fast; the
// walkthrough in internal/e2e (TestREADMEWalkthroughRunsEveryCommand) runs
// every command of the README for real against registries.
func TestREADMECommandsAreValid(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(string(data))
	if len(cmds) < 10 {
		t.Fatalf("found %d bundle commands in README.md, want at least 10: is the extraction broken?", len(cmds))
	}
	for _, line := range cmds {
		t.Run(line, func(t *testing.T) {
			var out, errb bytes.Buffer
			app := newApp(streams{in: strings.NewReader(""), out: &out, err: &errb}, true)
			if code := exitCode(app.RunContext(t.Context(), hoistFlags(app, shellWords(line))), &errb); code != exitOK {
				t.Errorf("README command does not parse (exit %d):\n%s\n%s", code, line, errb.String())
			}
		})
	}
}

func TestReadmeCommandsExtraction(t *testing.T) {
	md := "text bundle not this\n```sh\n$ bundle export \\\n  -o a.tar r/a:1   # comment\nbundle verify 'a b.tar'\nsha256sum -c x\n```\nbundle outside\n"
	got := readmeCommands(md)
	want := []string{"bundle export -o a.tar r/a:1", "bundle verify 'a b.tar'"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("readmeCommands = %q, want %q", got, want)
	}
	if w := shellWords(got[1]); len(w) != 3 || w[2] != "a b.tar" {
		t.Errorf("shellWords(%q) = %q", got[1], w)
	}
}

// readmeCommands returns the `bundle` command lines of the fenced code
// blocks, continuation lines joined, comments and prompts removed.
func readmeCommands(md string) []string {
	var cmds []string
	inBlock, cont := false, ""
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		line = strings.TrimSpace(line)
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		line = strings.TrimPrefix(line, "$ ")
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasSuffix(line, "\\") {
			cont = strings.TrimSpace(strings.TrimSuffix(line, "\\"))
			continue
		}
		if strings.HasPrefix(line, "bundle ") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// shellWords splits a command line on blanks, honouring single and double
// quotes: enough for documentation, not a shell.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

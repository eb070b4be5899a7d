package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/remote"
)

// Flags shared by the commands that talk to registries.
func remoteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "plain-http", Usage: "talk HTTP, not HTTPS, to every registry"},
		&cli.BoolFlag{Name: "insecure", Usage: "skip TLS certificate verification"},
		&cli.StringFlag{Name: "hosts-dir", Usage: "containerd hosts.toml `DIR` (certs.d layout)", TakesFile: true},
		&cli.IntFlag{Name: "concurrency", Value: 8, Usage: "`N` transfers at once"},
		stallTimeoutFlag(),
		&cli.StringFlag{Name: "authfile", EnvVars: []string{"REGISTRY_AUTH_FILE"}, TakesFile: true,
			Usage: "credentials `FILE` in containers-auth.json (docker config.json) form, instead of docker's config"},
		&cli.BoolFlag{Name: "debug", Usage: "print each registry request (method, address, status, bytes, time) on stderr"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress, no notices"},
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout"},
	}
}

func remoteOptions(c *cli.Context) remote.Options {
	o := remote.Options{
		PlainHTTP:    c.Bool("plain-http"),
		Insecure:     c.Bool("insecure"),
		HostsDir:     c.String("hosts-dir"),
		AuthFile:     c.String("authfile"),
		StallTimeout: stallTimeout(c),
		UserAgent:    commandName + "/" + buildVersion(),
	}
	if c.Bool("debug") {
		o.Debug = c.App.ErrWriter
	}
	return o
}

// checkHostsDir refuses a --hosts-dir that is not a directory: a typo
// there would silently drop the CA or mirror it was meant to add.
func checkHostsDir(c *cli.Context) error {
	dir := c.String("hosts-dir")
	if dir == "" {
		return nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usagef(c, "--hosts-dir %s is not a directory (containerd's certs.d layout: DIR/HOST/hosts.toml)", dir)
	}
	return nil
}

func checkConcurrency(c *cli.Context) error {
	if n := c.Int("concurrency"); n < 1 {
		return usagef(c, "--concurrency %d: want 1 or more", n)
	}
	return nil
}

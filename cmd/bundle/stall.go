package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/remote"
)

// stallTimeoutFlag is --stall-timeout, for the commands that talk to
// registries.
func stallTimeoutFlag() cli.Flag {
	return &cli.DurationFlag{
		Name:  "stall-timeout",
		Value: remote.DefaultStallTimeout,
		Usage: "cut and resume a transfer that receives nothing for `DURATION` (0: never)",
	}
}

// stallTimeout reads --stall-timeout: 0 means never cut a connection
// (remote.Options reads 0 as its default, and < 0 as never).
func stallTimeout(c *cli.Context) time.Duration {
	if d := c.Duration("stall-timeout"); d > 0 {
		return d
	}
	return -1
}

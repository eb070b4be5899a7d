package main

import (
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestStallTimeoutFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 30 * time.Second},
		{[]string{"--stall-timeout", "2m"}, 2 * time.Minute},
		{[]string{"--stall-timeout", "0"}, -1}, // never
	} {
		var got time.Duration
		app := &cli.App{Flags: []cli.Flag{stallTimeoutFlag()}, Action: func(ctx *cli.Context) error {
			got = remoteOptions(ctx).StallTimeout
			return nil
		}}
		if err := app.Run(append([]string{"bundle"}, c.args...)); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%q: StallTimeout %v, want %v", c.args, got, c.want)
		}
	}
}

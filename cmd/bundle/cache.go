package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bundle-dev/bundle/internal/progress"
	"github.com/bundle-dev/bundle/pack"
)

func cacheCommand(s streams, parseOnly bool) *cli.Command {
	dirFlag := &cli.StringFlag{Name: "cache", Usage: "content cache `DIR` (default: the one export uses)", TakesFile: true}
	dir := func(c *cli.Context) (string, error) {
		if d := c.String("cache"); d != "" {
			return d, nil
		}
		return pack.CacheDir()
	}
	return &cli.Command{
		Name:  "cache",
		Usage: "show or empty export's content cache (blobs kept to resume and reuse)",
		Subcommands: []*cli.Command{
			{
				Name:  "ls",
				Usage: "show where the cache is and what it holds",
				Flags: []cli.Flag{dirFlag, jsonFlag()},
				Action: func(c *cli.Context) error {
					d, err := dir(c)
					if err != nil || parseOnly {
						return err
					}
					st, err := pack.CacheList(c.Context, d)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(s.out, st)
					}
					fmt.Fprintf(s.out, "%s: %d blobs, %s; %d interrupted fetches, %s\n", st.Dir, st.Blobs, progress.Bytes(st.Bytes), st.Ingests, progress.Bytes(st.Partial))
					return nil
				},
			},
			{
				Name:  "prune",
				Usage: "remove what the cache holds (all of it, or what was not used lately)",
				Flags: []cli.Flag{dirFlag, jsonFlag(),
					&cli.DurationFlag{Name: "older-than", Usage: "remove only what was not used for `DURATION` (such as 720h)"}},
				Action: func(c *cli.Context) error {
					d, err := dir(c)
					if err != nil || parseOnly {
						return err
					}
					removed, err := pack.CachePrune(c.Context, d, c.Duration("older-than"))
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(s.out, removed)
					}
					fmt.Fprintf(s.err, "removed %d blobs (%s) and %d interrupted fetches from %s\n", removed.Blobs, progress.Bytes(removed.Bytes), removed.Ingests, removed.Dir)
					return nil
				},
			},
		},
	}
}

// Command gen writes the sample OCI layout (package testdata/sample) into
// a directory: go run ./testdata/gen -o DIR.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/bundle-dev/bundle/testdata/sample"
)

func main() {
	out := flag.String("o", "", "directory to write the layout into")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./testdata/gen -o DIR")
		os.Exit(2)
	}
	l, err := sample.Write(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s: %s (%s), %s (%s), %d referrers\n", *out,
		sample.MultiRef, l.Multi.Digest, sample.SingleRef, l.Single.Digest, len(l.Referrers))
}

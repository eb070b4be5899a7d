// Package spec reads the files that say what to export: the YAML spec
// (`bundle export -f`) and the plain list (`--images-from`). Both are parsed
// once, into typed values, before any network use; every error names the
// file, line and column.
package spec

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/Masterminds/semver/v3"
)

// Image is one entry: a reference, with or without a tag selection, and the
// options that apply to it.
type Image struct {
	Ref  string   // as written; with Tags it names a repository only
	Tags *TagRule // nil: Ref is exported as it is
	Opts Options  // the entry's own options over the file's defaults
	Pos  Position // where the entry starts
}

// Options are the per-image export options a spec can set. A nil pointer
// or slice means "as on the command line".
type Options struct {
	Platforms     []string // OS/ARCH[/VARIANT]
	ArtifactTypes []string // referrer artifact types to keep
	Referrers     *bool    // false: no referrers at all
	Cosign        *bool    // false: no cosign tag referrers
}

// Equal reports whether o and p ask for the same export.
func (o Options) Equal(p Options) bool {
	eqb := func(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return slices.Equal(o.Platforms, p.Platforms) && slices.Equal(o.ArtifactTypes, p.ArtifactTypes) &&
		eqb(o.Referrers, p.Referrers) && eqb(o.Cosign, p.Cosign)
}

// over returns o with what it leaves unset taken from d.
func (o Options) over(d Options) Options {
	if o.Platforms == nil {
		o.Platforms = d.Platforms
	}
	if o.ArtifactTypes == nil {
		o.ArtifactTypes = d.ArtifactTypes
	}
	if o.Referrers == nil {
		o.Referrers = d.Referrers
	}
	if o.Cosign == nil {
		o.Cosign = d.Cosign
	}
	return o
}

// TagRule selects tags of a repository from its tag list: those matching
// both Semver and Regexp (each if set), then the Newest of them.
type TagRule struct {
	Semver    *semver.Constraints
	SemverRaw string
	Regexp    *regexp.Regexp
	Newest    int // 0: all that matched
}

// Position is a place in a spec file.
type Position struct {
	File         string
	Line, Column int
}

func (p Position) String() string {
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Error is a mistake in a spec file, at a place.
type Error struct {
	Pos Position
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

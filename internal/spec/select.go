package spec

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/Masterminds/semver/v3"
)

// Match reports whether tag passes the rule's semver range and regular
// expression. A tag that is no version never passes a semver range.
func (r *TagRule) Match(tag string) bool {
	if r.Regexp != nil && !r.Regexp.MatchString(tag) {
		return false
	}
	if r.Semver != nil {
		v, err := semver.NewVersion(tag)
		if err != nil || !r.Semver.Check(v) {
			return false
		}
	}
	return true
}

// Select returns the tags of list that the rule keeps, newest first.
// "Newest" is by version: registries list tags without dates, so the
// version order is the only one the tag list itself gives. Tags that are no
// versions come after the versions, in reverse lexical order.
func (r *TagRule) Select(list []string) []string {
	var out []string
	for _, t := range list {
		if r.Match(t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return -compareTags(a, b) })
	if r.Newest > 0 && len(out) > r.Newest {
		out = out[:r.Newest]
	}
	return out
}

// compareTags orders versions among themselves, non-versions below them.
func compareTags(a, b string) int {
	va, ea := semver.NewVersion(a)
	vb, eb := semver.NewVersion(b)
	switch {
	case ea == nil && eb == nil:
		if c := va.Compare(vb); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	case ea == nil:
		return 1
	case eb == nil:
		return -1
	}
	return cmp.Compare(a, b)
}

// String describes the rule for messages.
func (r *TagRule) String() string {
	s := ""
	if r.Semver != nil {
		s += "semver " + r.SemverRaw
	}
	if r.Regexp != nil {
		if s != "" {
			s += ", "
		}
		s += "regex " + r.Regexp.String()
	}
	if r.Newest > 0 {
		if s != "" {
			s += ", "
		}
		s += "newest " + strconv.Itoa(r.Newest)
	}
	return s
}

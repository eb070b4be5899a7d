// Package safetext makes text from a bundle safe to print on a terminal:
// names, tags and annotations come from outside, and a terminal obeys the
// escape sequences in them.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String escapes what a terminal would act on or hide: control characters
// (C0, DEL, C1: escape sequences, carriage returns that overwrite a line),
// Unicode format characters (bidirectional overrides that reorder what is
// shown) and invalid UTF-8. Everything else, any script included, is kept.
func String(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case escape(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case escape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || escape(r) || r == '\\' {
			return true
		}
		i += size
	}
	return false
}

func escape(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

package parts

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SidecarSuffix names the checksum file beside a bundle.
const SidecarSuffix = ".sha256"

// partialSuffix marks a file still being written: nothing is left under a
// final name by a failed run.
const partialSuffix = ".partial"

// DataName is the name of data part i of base.
func DataName(base string, i int) string { return fmt.Sprintf("%s.%03d", base, i) }

// ParityName is the name of parity part j of base.
func ParityName(base string, j int) string { return fmt.Sprintf("%s.p%03d", base, j) }

// SidecarName is base's checksum file.
func SidecarName(base string) string { return base + SidecarSuffix }

// Locate tells whether path names a bundle carried in parts: FILE.000, any
// FILE.NNN or FILE.pNNN, FILE.sha256 listing parts, or FILE itself when
// only its parts exist. It returns FILE.
func Locate(path string) (base string, ok bool) {
	if path == "" || path == "-" {
		return "", false
	}
	var candidates []string
	if b, found := cutIndex(path); found {
		candidates = append(candidates, b)
	}
	if b, found := strings.CutSuffix(path, SidecarSuffix); found {
		candidates = append(candidates, b)
	}
	if _, err := os.Stat(path); len(candidates) == 0 && err == nil {
		// The whole archive (or a layout directory) is here: read it, not
		// any parts beside it.
		return "", false
	}
	candidates = append(candidates, path)
	for _, b := range candidates {
		if isSet(b) {
			return b, true
		}
	}
	return "", false
}

// cutIndex strips a part suffix: .NNN or .pNNN (three digits or more).
func cutIndex(path string) (string, bool) {
	ext := filepath.Ext(path)
	digits := strings.TrimPrefix(strings.TrimPrefix(ext, "."), "p")
	if len(digits) < 3 {
		return "", false
	}
	if _, err := strconv.Atoi(digits); err != nil {
		return "", false
	}
	return strings.TrimSuffix(path, ext), true
}

// isSet says base has parts: its first data part, or a sidecar that lists
// parts (the first part may be the one lost).
func isSet(base string) bool {
	if fi, err := os.Stat(DataName(base, 0)); err == nil && fi.Mode().IsRegular() {
		return true
	}
	sc, err := ReadSidecar(SidecarName(base))
	return err == nil && sc.Split()
}

func dirOf(path string) string { return filepath.Dir(path) }

package spec

import (
	"fmt"

	"github.com/distribution/reference"
)

// Merge drops repeated entries and refuses two entries for the same image
// (same reference, same tag selection) that ask for different options:
// which one was meant cannot be guessed.
func Merge(images []Image) ([]Image, error) {
	var out []Image
	first := map[string]int{}
	for _, img := range images {
		k := key(img)
		i, ok := first[k]
		if !ok {
			first[k] = len(out)
			out = append(out, img)
			continue
		}
		if !out[i].Opts.Equal(img.Opts) {
			return nil, &Error{Pos: img.Pos, Msg: fmt.Sprintf("%s is also listed at %s with other options: keep one entry", img.Ref, out[i].Pos)}
		}
	}
	return out, nil
}

// key identifies an entry: the normalised reference and the tag rule.
func key(img Image) string {
	ref := img.Ref
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		ref = reference.TagNameOnly(named).String()
	}
	if img.Tags != nil {
		ref += " tags " + img.Tags.String()
	}
	return ref
}

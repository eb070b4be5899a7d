package remote

import (
	"fmt"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// SplitReference splits a reference the way docker does: no host means
// docker.io, and a one-component docker.io name is under library/. A
// reference with neither tag nor digest gets the tag "latest"; one with a
// digest keeps its tag, if any, for naming only.
func SplitReference(ref string) (host, repo, tag string, dgst digest.Digest, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", "", "", fmt.Errorf("parsing image reference %q: %w (want [host[:port]/]repo[:tag][@sha256:...], lower case)", ref, err)
	}
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		dgst = d.Digest()
	}
	if tag == "" && dgst == "" {
		tag = "latest"
	}
	return reference.Domain(named), reference.Path(named), tag, dgst, nil
}

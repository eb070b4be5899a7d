package unpack

import (
	"fmt"
	"path"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// target is --target split into its registry host and repository prefix.
type target struct {
	host   string // "reg:5000"
	prefix string // "mirror" or ""
}

func parseTarget(s string) (target, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/")
	if s == "" {
		return target{}, fmt.Errorf("no target registry: give --target HOST[:PORT][/PREFIX]")
	}
	if strings.Contains(s, "://") {
		return target{}, fmt.Errorf("target %q: give HOST[:PORT][/PREFIX] without a scheme (use --plain-http for HTTP)", s)
	}
	host, prefix, _ := strings.Cut(s, "/")
	t := target{host: host, prefix: strings.Trim(prefix, "/")}
	probe := t.host + "/" + path.Join(t.prefix, "x")
	if _, err := reference.ParseNamed(probe); err != nil {
		return target{}, fmt.Errorf("target %q is not a valid HOST[:PORT][/PREFIX]: %w", s, err)
	}
	return t, nil
}

// repo is the repository path (without host) that source path lands in.
func (t target) repo(sourcePath string) string {
	return path.Join(t.prefix, sourcePath)
}

// ref is the full target reference "host/repo:tag" or "host/repo@digest".
func (t target) ref(repo, tag string, d digest.Digest) string {
	if tag != "" {
		return t.host + "/" + repo + ":" + tag
	}
	return t.host + "/" + repo + "@" + d.String()
}

// mapped is where an index.json entry lands on the target.
type mapped struct {
	repo string
	tag  string
	bare bool // the name had no repository: it went to the prefix
}

// mapName applies the repository mapping: keep path and tag, drop the
// source host, prepend the target prefix. A bare tag ("1.0", as skopeo and
// oras write) has no repository, so the prefix itself is the repository.
func (t target) mapName(name string) (mapped, error) {
	if !strings.ContainsAny(name, "/:@") {
		if t.prefix == "" {
			return mapped{}, fmt.Errorf("image %q has no repository in the bundle: give --target HOST/REPOSITORY to name one", name)
		}
		return mapped{repo: t.prefix, tag: name, bare: true}, nil
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return mapped{}, fmt.Errorf("image name %q in index.json: %w", name, err)
	}
	m := mapped{repo: t.repo(reference.Path(named))}
	if tagged, ok := named.(reference.Tagged); ok {
		m.tag = tagged.Tag()
	}
	return m, nil
}

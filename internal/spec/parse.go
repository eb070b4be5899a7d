package spec

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"
)

// Version is the spec format version this package reads.
const Version = 1

// maxFile bounds a spec file: it is a list of names, not data.
const maxFile = 4 << 20

// Load reads and parses spec files, then merges their entries.
func Load(paths ...string) ([]Image, error) {
	var all []Image
	for _, p := range paths {
		data, err := readBounded(p)
		if err != nil {
			return nil, err
		}
		imgs, err := Parse(p, data)
		if err != nil {
			return nil, err
		}
		all = append(all, imgs...)
	}
	return Merge(all)
}

func readBounded(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("spec file %s: %w", path, err)
	}
	if fi.Size() > maxFile {
		return nil, fmt.Errorf("spec file %s: %d bytes, more than the %d a spec may have", path, fi.Size(), maxFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("spec file %s: %w", path, err)
	}
	return data, nil
}

// Parse reads one YAML spec; name is used in errors. The entries come back
// with the file's defaults applied.
func Parse(name string, data []byte) ([]Image, error) {
	p := &parser{file: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, p.yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{Pos: Position{name, 1, 1}, Msg: "empty spec: list images under \"images:\""}
	}
	top := doc.Content[0]
	var defaults Options
	var images []Image
	var sawImages bool
	err := p.mapping(top, "the spec", map[string]func(*yaml.Node) error{
		"version": func(n *yaml.Node) error {
			v, err := p.int(n)
			if err == nil && v != Version {
				err = p.errorf(n, "version %d: this bundle reads version %d", v, Version)
			}
			return err
		},
		"defaults": func(n *yaml.Node) error {
			var err error
			defaults, err = p.options(n, "defaults", nil)
			return err
		},
		"images": func(n *yaml.Node) error {
			sawImages = true
			if n.Kind != yaml.SequenceNode {
				return p.errorf(n, "images: want a list of entries")
			}
			for _, e := range n.Content {
				img, err := p.image(e)
				if err != nil {
					return err
				}
				images = append(images, img)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if !sawImages || len(images) == 0 {
		return nil, p.errorf(top, "no images: list them under \"images:\"")
	}
	for i := range images {
		images[i].Opts = images[i].Opts.over(defaults)
	}
	return images, nil
}

type parser struct{ file string }

func (p *parser) pos(n *yaml.Node) Position { return Position{p.file, n.Line, n.Column} }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) error {
	return &Error{Pos: p.pos(n), Msg: fmt.Sprintf(format, args...)}
}

// yamlError turns the library's syntax error, which says "line N: ...",
// into an Error at that line.
func (p *parser) yamlError(err error) error {
	line, col := 1, 1
	var n int
	msg := err.Error()
	if _, e := fmt.Sscanf(msg, "yaml: line %d:", &n); e == nil {
		line = n
		if i := len(fmt.Sprintf("yaml: line %d: ", n)); i <= len(msg) {
			msg = msg[i:]
		}
	}
	return &Error{Pos: Position{p.file, line, col}, Msg: "not valid YAML: " + msg}
}

// mapping calls each key's handler; an unknown or repeated key is an error.
func (p *parser) mapping(n *yaml.Node, what string, keys map[string]func(*yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errorf(n, "%s: want a mapping of keys", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := keys[k.Value]
		if !ok {
			return p.errorf(k, "unknown key %q in %s (known: %s)", k.Value, what, known(keys))
		}
		if seen[k.Value] {
			return p.errorf(k, "key %q given twice in %s", k.Value, what)
		}
		seen[k.Value] = true
		if err := h(v); err != nil {
			return err
		}
	}
	return nil
}

func known(keys map[string]func(*yaml.Node) error) string {
	return strings.Join(slices.Sorted(maps.Keys(keys)), ", ")
}

func (p *parser) scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errorf(n, "%s: want a single value", what)
	}
	return n.Value, nil
}

func (p *parser) int(n *yaml.Node) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, p.errorf(n, "want a whole number, not %q", n.Value)
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return 0, p.errorf(n, "want a whole number: %v", err)
	}
	return v, nil
}

func (p *parser) bool(n *yaml.Node) (*bool, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return nil, p.errorf(n, "want true or false, not %q", n.Value)
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return nil, p.errorf(n, "want true or false: %v", err)
	}
	return &b, nil
}

func (p *parser) strings(n *yaml.Node, what string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errorf(n, "%s: want a list", what)
	}
	out := []string{}
	for _, e := range n.Content {
		s, err := p.scalar(e, what)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// options reads the option keys; extra adds the keys of an image entry.
func (p *parser) options(n *yaml.Node, what string, extra map[string]func(*yaml.Node) error) (Options, error) {
	var o Options
	keys := map[string]func(*yaml.Node) error{
		"platforms": func(v *yaml.Node) error {
			var err error
			if o.Platforms, err = p.strings(v, "platforms"); err != nil {
				return err
			}
			for i, s := range o.Platforms {
				if _, err := platforms.Parse(s); err != nil {
					return p.errorf(v.Content[i], "platform %q: %v: use OS/ARCH[/VARIANT], for example linux/arm64", s, err)
				}
			}
			return nil
		},
		"artifactTypes": func(v *yaml.Node) error {
			var err error
			o.ArtifactTypes, err = p.strings(v, "artifactTypes")
			return err
		},
		"referrers": func(v *yaml.Node) error {
			var err error
			o.Referrers, err = p.bool(v)
			return err
		},
		"cosign": func(v *yaml.Node) error {
			var err error
			o.Cosign, err = p.bool(v)
			return err
		},
	}
	for k, h := range extra {
		keys[k] = h
	}
	err := p.mapping(n, what, keys)
	return o, err
}

// image reads one entry of images: a reference alone, or a mapping.
func (p *parser) image(n *yaml.Node) (Image, error) {
	img := Image{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode {
		ref, err := p.ref(n, false)
		img.Ref = ref
		return img, err
	}
	var refNode *yaml.Node
	var err error
	img.Opts, err = p.options(n, "an image entry", map[string]func(*yaml.Node) error{
		"ref": func(v *yaml.Node) error {
			refNode = v
			return nil
		},
		"tags": func(v *yaml.Node) error {
			img.Tags, err = p.tags(v)
			return err
		},
	})
	if err != nil {
		return img, err
	}
	if refNode == nil {
		return img, p.errorf(n, "image entry without \"ref\"")
	}
	img.Ref, err = p.ref(refNode, img.Tags != nil)
	return img, err
}

// ref checks a reference; with a tag selection it must name a repository
// only, since the selection picks the tags.
func (p *parser) ref(n *yaml.Node, repoOnly bool) (string, error) {
	s, err := p.scalar(n, "ref")
	if err != nil {
		return "", err
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", p.errorf(n, "%q is not an image reference: %v (want [host[:port]/]repo[:tag][@sha256:...], lower case)", s, err)
	}
	if repoOnly {
		_, tagged := named.(reference.Tagged)
		_, digested := named.(reference.Digested)
		if tagged || digested {
			return "", p.errorf(n, "%q names a tag or digest, and \"tags\" selects them: give the repository only", s)
		}
	}
	return s, nil
}

func (p *parser) tags(n *yaml.Node) (*TagRule, error) {
	r := &TagRule{}
	err := p.mapping(n, "tags", map[string]func(*yaml.Node) error{
		"semver": func(v *yaml.Node) error {
			s, err := p.scalar(v, "semver")
			if err != nil {
				return err
			}
			c, err := semver.NewConstraint(s)
			if err != nil {
				return p.errorf(v, "semver range %q: %v (for example \">=1.24 <1.26\")", s, err)
			}
			r.Semver, r.SemverRaw = c, s
			return nil
		},
		"regex": func(v *yaml.Node) error {
			s, err := p.scalar(v, "regex")
			if err != nil {
				return err
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return p.errorf(v, "regex %q does not compile: %v", s, err)
			}
			r.Regexp = re
			return nil
		},
		"newest": func(v *yaml.Node) error {
			k, err := p.int(v)
			if err == nil && k < 1 {
				err = p.errorf(v, "newest %d: want 1 or more", k)
			}
			r.Newest = k
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	if r.Semver == nil && r.Regexp == nil && r.Newest == 0 {
		return nil, p.errorf(n, "tags: give semver, regex or newest")
	}
	return r, nil
}

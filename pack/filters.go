package pack

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// keepMatching leaves out the roots that --platform keeps nothing of: an
// index none of whose platforms match, a single-platform image of another
// platform. Without AllowEmpty that is an error naming the image and what
// it has, since an export that silently carries nothing of an image is a
// typo found on the far side of the air gap.
func keepMatching(g *discovery, roots []root, opts Options) ([]root, error) {
	var out []root
	for _, rt := range roots {
		e := g.get(rt.repo, rt.desc.Digest)
		if rt.w.matcher == nil || e == nil || len(g.platformsOf(rt)) > 0 || (e.platform == nil && len(e.all) == 0) {
			out = append(out, rt)
			continue
		}
		has := e.all
		if e.platform != nil {
			has = []string{platformString(e)}
		}
		msg := fmt.Sprintf("%s has no platform matching --platform %s: it has %s", rt.ref, strings.Join(rt.w.platforms, ","), strings.Join(has, ", "))
		if !opts.AllowEmpty {
			return nil, fmt.Errorf("%s; pick one of those, or pass --allow-empty to export the other images without it", msg)
		}
		if opts.Notice != nil {
			opts.Notice("%s: left out (--allow-empty)", msg)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the platforms asked for keep nothing of any image: nothing to export")
	}
	return out, nil
}

func platformString(e *entry) string {
	p := e.platform.OS + "/" + e.platform.Architecture
	if e.platform.Variant != "" {
		p += "/" + e.platform.Variant
	}
	return p
}

// checkArtifactTypes refuses an --artifact-type that keeps no referrer of
// an image that has some, naming the types it has.
func checkArtifactTypes(p *Plan, opts Options) error {
	for i := range p.Images {
		img := &p.Images[i]
		if len(img.types) == 0 || img.Referrers > 0 || len(img.dropped) == 0 {
			continue
		}
		slices.Sort(img.dropped)
		msg := fmt.Sprintf("%s has no referrer of type %s: it has %s", img.Ref, strings.Join(img.types, ","), strings.Join(img.dropped, ", "))
		if !opts.AllowEmpty {
			return fmt.Errorf("%s; check the type, or pass --allow-empty to export the image without them", msg)
		}
		if opts.Notice != nil {
			opts.Notice("%s: exported without referrers (--allow-empty)", msg)
		}
	}
	return nil
}

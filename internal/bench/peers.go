package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Peer steps; they have no target of their own: they are there to be read
// beside bundle's rows of the same run.
const (
	stepPeerExport = "peer: skopeo copy --all, every tag → one OCI layout"
	stepPeerImport = "peer: skopeo copy --all, OCI layout → empty registry"
)

// peers times skopeo, the one of the peers that Debian ships, on
// the same data set: every tag copied into one OCI layout directory (it
// skips blobs the layout already holds), then from there into an empty
// registry. skopeo keeps no referrers, so it moves fewer bytes than
// bundle. Without skopeo on PATH there are no peer rows.
func (s *stepRunner) peers(ctx context.Context) []Row {
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		return nil
	}
	dir := filepath.Join(s.work, "skopeo-layout")
	defer os.RemoveAll(dir)
	logf(s.cfg.Log, "peer: skopeo copy --all to an OCI layout")
	export := s.repeat(ctx, stepPeerExport, func(int) (Sample, error) {
		if err := os.RemoveAll(dir); err != nil {
			return Sample{}, err
		}
		return s.skopeoEach(ctx, bin, func(ref string) []string {
			return []string{"docker://" + s.src.Host + "/" + ref, "oci:" + dir + ":" + layoutName(ref)}
		})
	})
	export.RSSLimit = 0
	if export.Err != "" {
		return []Row{export, {Step: stepPeerImport, Skipped: true, Err: "the skopeo export failed"}}
	}
	logf(s.cfg.Log, "peer: skopeo copy --all into an empty registry")
	var target *Registry
	defer func() {
		if target != nil {
			_ = target.RemoveAll()
		}
	}()
	imp := s.repeat(ctx, stepPeerImport, func(i int) (Sample, error) {
		if err := s.freshTarget(ctx, &target, fmt.Sprintf("target-skopeo-%d", i)); err != nil {
			return Sample{}, err
		}
		return s.skopeoEach(ctx, bin, func(ref string) []string {
			return []string{"oci:" + dir + ":" + layoutName(ref), "docker://" + target.Host + "/" + ref}
		})
	})
	imp.RSSLimit = 0
	return []Row{export, imp}
}

// skopeoEach runs one skopeo copy per tag of the data set, one after the
// other as a script would, and adds up their times; the peak RSS is the
// highest of them.
func (s *stepRunner) skopeoEach(ctx context.Context, bin string, endpoints func(ref string) []string) (Sample, error) {
	var total Sample
	for _, ref := range s.ds.Refs {
		args := append([]string{"--insecure-policy", "copy", "--all", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"}, endpoints(ref)...)
		sample, err := RunChild(ctx, s.work, bin, args...)
		if err != nil {
			return total, err
		}
		total.add(sample)
	}
	return total, nil
}

// layoutName makes a tag reference ("team/app:1.0") a name the OCI layout
// transport accepts.
func layoutName(ref string) string {
	return strings.NewReplacer("/", "_", ":", "-").Replace(ref)
}

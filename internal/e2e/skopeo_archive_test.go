package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/internal/testregistry"
)

// skopeo names the image in its oci-archive with a bare tag: import must
// place it under the --target path and keep its digest.
func TestImportOfSkopeoOCIArchive(t *testing.T) {
	needTools(t, testregistry.RegistryBinary, "skopeo")
	src := testregistry.StartProcess(t, testregistry.ProcessOptions{})
	img := src.PushImage(t, "team/app", "1.0", testregistry.ImageSpec{Seed: 21, Gzip: true})

	archive := filepath.Join(t.TempDir(), "app.oci.tar")
	out := runCmd(t, nil, "skopeo", "copy", "--src-tls-verify=false", "docker://"+src.Ref("team/app", "1.0"), "oci-archive:"+archive+":1.0")
	if out.code != 0 {
		t.Fatalf("skopeo copy to oci-archive: exit %d: %s", out.code, out.stderr)
	}

	dst := testregistry.StartProcess(t, testregistry.ProcessOptions{})
	r := bundle(t, nil, "import", "--plain-http", "--quiet", "--target", dst.Host+"/mirror/app", archive)
	if r.code != 0 {
		t.Fatalf("bundle import of skopeo's oci-archive: exit %d: %s", r.code, r.stderr)
	}
	d, _, ok := dst.GetManifest(t, "mirror/app", "1.0")
	if !ok || d.Digest != img.Desc.Digest {
		t.Errorf("imported mirror/app:1.0 is %s (found %v), want %s", d.Digest, ok, img.Desc.Digest)
	}
	raw := runCmd(t, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+dst.Host+"/mirror/app:1.0")
	if raw.code != 0 || digest.FromString(raw.stdout) != img.Desc.Digest {
		t.Errorf("skopeo reads back %s (exit %d: %s), want %s", digest.FromString(raw.stdout), raw.code, raw.stderr, img.Desc.Digest)
	}
}

// A bundle piped on stdin imports like the file, sequentially.
func TestImportFromStdinPipe(t *testing.T) {
	needTools(t, testregistry.RegistryBinary)
	src := seed(t)
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	export(t, archive, nil, src.toolRef)

	dst := testregistry.StartProcess(t, testregistry.ProcessOptions{})
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bundleStdin(t, f, "import", "--plain-http", "--quiet", "--target", dst.Host, "-")
	if r.code != 0 {
		t.Fatalf("bundle import - < %s: exit %d: %s", archive, r.code, r.stderr)
	}
	repo := src.toolRef[strings.Index(src.toolRef, "/")+1 : strings.LastIndex(src.toolRef, ":")]
	if d, _, ok := dst.GetManifest(t, repo, "2.0"); !ok || d.Digest != src.tool.Digest {
		t.Errorf("stdin import landed %s (found %v), want %s", d.Digest, ok, src.tool.Digest)
	}
}

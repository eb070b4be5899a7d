package unpack

import (
	"fmt"

	"github.com/bundle-dev/bundle/verify"
)

// writeReceipt records what the target holds of the bundle now that the
// import succeeded: every image under its target name, every manifest, and
// every blob, those an incremental bundle left out included (the preflight
// found them there).
func (im *importer) writeReceipt(path string) error {
	r, err := verify.ReceiptOf(im.b)
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	r.Target = im.opts.Target
	targets := map[string]string{}
	for _, ir := range im.report.Images {
		targets[ir.Source] = ir.Target
	}
	for k := range r.Images {
		r.Images[k].Target = targets[r.Images[k].Reference]
	}
	return verify.WriteReceipt(path, r)
}

package e2e

import (
	"bufio"
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestServeAnswersAndStopsCleanlyOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bundleBin, "serve", "--dir", t.TempDir(), "--addr", "127.0.0.1:0")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			addr, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no address on stdout: %v\n%s", err, stderr.String())
			}
			resp, err := http.Get("http://" + strings.TrimSpace(addr) + "/v2/")
			if err != nil {
				t.Errorf("GET /v2/ on %s: %v", addr, err)
			} else {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /v2/ = %d, want 200", resp.StatusCode)
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("serve after %s: %v, want exit 0\n%s", sig, err, stderr.String())
			}
		})
	}
}

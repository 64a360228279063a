//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourSource is the file whose quick tour TestTour runs, relative to the
// repository root. To try a draft: go test -ldflags
// "-X vault-plugin-secrets-cisco-s3/scripts/e2e.tourSource=/abs/draft.md".
var tourSource = "README.md"

// tourOrg is the organization of the simulator's demo API key.
const tourOrg = "1234567"

// tourExports are the variables the tour reads, which make dev must print.
var tourExports = []string{"VAULT_ADDR", "VAULT_TOKEN", "PATH", "CISCO_CLIENT_ID", "CISCO_CLIENT_SECRET",
	"CISCO_API_URL", "CISCO_TOKEN_URL", "AWS_STS_URL", "CISCO_DATA_PATH", "AWS_ENDPOINT_URL", "AWS_REGION"}

// tourBlock returns the one sh block between <!-- tour --> and
// <!-- /tour -->.
func tourBlock(t *testing.T, path string) string {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(text), "\n")
	start, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case "<!-- tour -->":
			if start >= 0 {
				t.Fatalf("%s: two <!-- tour --> lines", path)
			}
			start = i
		case "<!-- /tour -->":
			if end >= 0 {
				t.Fatalf("%s: two <!-- /tour --> lines", path)
			}
			end = i
		}
	}
	if start < 0 || end < start {
		t.Fatalf("%s: no quick tour: want one ```sh block between a <!-- tour --> line and a later <!-- /tour --> line", path)
	}
	var fences []int
	for i := start + 1; i < end; i++ {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "```") {
			fences = append(fences, i)
		}
	}
	if len(fences) != 2 || strings.TrimSpace(lines[fences[0]]) != "```sh" || strings.TrimSpace(lines[fences[1]]) != "```" {
		t.Fatalf("%s: want exactly one ```sh block between <!-- tour --> and <!-- /tour -->, found %d fence lines", path, len(fences))
	}
	return strings.Join(lines[fences[0]+1:fences[1]], "\n") + "\n"
}

// TestTour runs the README's quick tour, as a user would: make dev's
// script in the background, its printed exports pasted into bash, then
// the tour's block, with Debian's aws on PATH; then make dev's Vault Agent
// hint.
func TestTour(t *testing.T) {
	root := repoRoot(t)
	source := tourSource
	if !filepath.IsAbs(source) {
		source = filepath.Join(root, source)
	}
	block := tourBlock(t, source)
	awsBin := awsCLI(t)
	basePath := filepath.Dir(awsBin) + string(os.PathListSeparator) + os.Getenv("PATH")

	// make dev builds, then runs scripts/dev.sh; make test-e2e has built.
	devTmp := t.TempDir()
	dev := start(t, []string{"VAULT_BIN=" + vaultBin(t), "TMPDIR=" + devTmp, "PATH=" + basePath},
		filepath.Join(root, "scripts", "dev.sh"))
	waitFor(t, 90*time.Second, "make dev to print its exports", func() bool {
		select {
		case <-dev.done:
			t.Fatalf("dev.sh exited:\n%s", dev.log.String())
		default:
		}
		return strings.Contains(dev.log.String(), "Press Ctrl-C to stop.")
	})
	printed := dev.log.String()
	var exports []string
	vars := map[string]string{}
	for _, l := range strings.Split(printed, "\n") {
		if !strings.HasPrefix(l, "export ") {
			continue
		}
		exports = append(exports, l)
		for _, kv := range strings.Fields(strings.TrimPrefix(l, "export ")) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
	}
	for _, k := range tourExports {
		if _, ok := vars[k]; !ok {
			t.Fatalf("make dev printed no export of %s:\n%s", k, printed)
		}
	}
	s := &sim{url: vars["AWS_ENDPOINT_URL"]}
	before := s.org(t, tourOrg)

	// The printed exports, pasted, then the tour. HOME and the AWS files
	// keep this machine's own settings out.
	script := filepath.Join(t.TempDir(), "tour.sh")
	writeFile(t, script, strings.Join(exports, "\n")+"\n"+block)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", script)
	cmd.Env = []string{"PATH=" + basePath, "HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
	raw, runErr := cmd.CombinedOutput()
	after := s.org(t, tourOrg)
	out := redactKeys(string(raw), before.SecretAccessKey, after.SecretAccessKey)
	if runErr != nil {
		t.Fatalf("the tour failed: %v\n%s", runErr, out)
	}
	t.Logf("the tour's output:\n%s", out)

	if !regexp.MustCompile(`(?m)^result\s+valid$`).MatchString(out) {
		t.Errorf("verify did not answer valid")
	}
	if after.Rotations < 1 || after.CurrentKeyID == before.CurrentKeyID {
		t.Errorf("the tour's rotation did not reach the simulator: rotations %d, key %s → %s",
			after.Rotations, before.CurrentKeyID, after.CurrentKeyID)
	}
	ids := regexp.MustCompile(`(?m)^access_key_id\s+(\S+)$`).FindAllStringSubmatch(out, -1)
	if len(ids) == 0 {
		t.Errorf("creds printed no access_key_id")
	}
	for _, id := range ids {
		if id[1] != after.CurrentKeyID {
			t.Errorf("access_key_id %s, simulator's current key %s", id[1], after.CurrentKeyID)
		}
	}
	// aws s3 ls prints a folder as "PRE name/" and an object as date,
	// time, size and name.
	if !regexp.MustCompile(`(?m)^\s+PRE \S+/$|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+ \S+$`).MatchString(out) {
		t.Errorf("aws s3 ls listed nothing")
	}

	// make dev's Vault Agent hint, run as printed, renders the tour's key.
	agentCmd := regexp.MustCompile(`(?m)^\s+(vault agent -config=\S+)$`).FindStringSubmatch(printed)
	rendered := regexp.MustCompile(`(?m)^\s+cat (\S+)$`).FindStringSubmatch(printed)
	if agentCmd == nil || rendered == nil {
		t.Fatalf("make dev printed no Vault Agent hint:\n%s", printed)
	}
	agent := start(t, nil, "bash", "-c", strings.Join(exports, "\n")+"\nexec "+agentCmd[1])
	waitFor(t, 30*time.Second, "the agent to render cisco-s3/creds/acme", func() bool {
		return readRendered(rendered[1]) == credentialsFile(after.CurrentKeyID, after.SecretAccessKey)
	})
	agent.stop()

	// Ctrl-C's signal stops dev.sh, and it stops everything it started.
	if err := dev.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dev.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("dev.sh did not stop on SIGINT:\n%s", dev.log.String())
	}
	// A clean exit: make would report "Error 130" otherwise.
	if code := dev.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("dev.sh exited %d on SIGINT, want 0:\n%s", code, dev.log.String())
	}
	for _, name := range []string{"VAULT_ADDR", "AWS_ENDPOINT_URL"} {
		u, err := url.Parse(vars[name])
		if err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after dev.sh stopped", vars[name])
		}
	}
	if left := processesUnder(devTmp); len(left) > 0 {
		t.Errorf("dev.sh left processes running: %s", strings.Join(left, "; "))
	}
}

// redactKeys hides secret access keys in the tour's output: the values
// given, and any secret_access_key row.
func redactKeys(out string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			out = strings.ReplaceAll(out, s, "<redacted>")
		}
	}
	return regexp.MustCompile(`(?m)^(secret_access_key\s+)\S+$`).ReplaceAllString(out, "${1}<redacted>")
}

// processesUnder lists the processes whose command line names dir.
func processesUnder(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir) {
			out = append(out, fmt.Sprintf("%s %s", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return out
}

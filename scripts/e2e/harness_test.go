//go:build e2e

// Package e2e drives a real Vault server, the vault CLI, Vault Agent, the
// plugin binary and the Cisco API simulator, on loopback and free ports.
// Run it with make test-e2e.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	pluginName = "vault-plugin-secrets-cisco-s3"
	v1         = "v0.1.0-e2e"
	v2         = "v0.1.1-e2e"

	simClient    = "e2e-client"
	simSecret    = "e2e-client-secret-9Xq2"
	simOrg       = "1234567"
	offClient    = "e2e-off"
	offSecret    = "e2e-off-secret-7Lm4"
	offOrg       = "7654321"
	autoClient   = "e2e-auto"
	autoSecret   = "e2e-auto-secret-3Kp8"
	autoOrg      = "5555555"
	pickupClient = "e2e-pickup"
	pickupSecret = "e2e-pickup-secret-6Rt1"
	awsClient    = "e2e-aws"
	awsSecret    = "e2e-aws-secret-2Wv5"
	awsOrg       = "4000001"
	rootToken    = "e2e-root"
	waitRotate   = 3 * time.Minute
	mountPrefix  = "cisco-s3"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func vaultBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("VAULT_BIN")
	if bin == "" {
		t.Fatal("VAULT_BIN is not set: run make test-e2e")
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a process the suite started; it is stopped by PID at cleanup.
type proc struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, log: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the process by PID: SIGTERM, then SIGKILL.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process with SIGKILL, as a crash would, and then the
// plugin processes it had started, which would otherwise outlive it.
func (p *proc) kill() {
	children := childPIDs(p.cmd.Process.Pid)
	_ = p.cmd.Process.Kill()
	<-p.done
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// childPIDs lists the processes whose parent is pid, from /proc.
func childPIDs(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command name: state, then the parent PID.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		var state string
		var ppid, child int
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil && ppid == pid {
			if _, err := fmt.Sscan(e.Name(), &child); err == nil {
				out = append(out, child)
			}
		}
	}
	return out
}

// sim is a running Cisco API simulator.
type sim struct {
	url string
	p   *proc
}

// startSim starts the simulator with the suite's API keys and the extra
// flags.
func startSim(t *testing.T, extra ...string) *sim {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin", "cisco-s3-sim")
	args := append([]string{"-addr", "127.0.0.1:0",
		"-key", simClient + ":" + simSecret + ":" + simOrg,
		"-key", offClient + ":" + offSecret + ":" + offOrg, "-disabled-org", offOrg,
		"-key", autoClient + ":" + autoSecret + ":" + autoOrg,
		"-key", pickupClient + ":" + pickupSecret + ":" + strings.Join(pickupOrgs[:], ","),
		"-key", awsClient + ":" + awsSecret + ":" + awsOrg}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: log, done: make(chan struct{})}
	lines := bufio.NewScanner(stdout)
	url := ""
	for lines.Scan() {
		if _, after, ok := strings.Cut(lines.Text(), "listening on "); ok {
			url = strings.TrimSpace(after)
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout); _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	if url == "" {
		t.Fatalf("simulator did not start: %s", log.String())
	}
	return &sim{url: url, p: p}
}

type simOrgState struct {
	CurrentKeyID    string `json:"current_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Rotations       int    `json:"rotations"`
	DataPath        string `json:"data_path"`
	AccountID       string `json:"account_id"`
}

func (s *sim) org(t *testing.T, id string) simOrgState {
	t.Helper()
	resp, err := http.Get(s.url + "/_sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Orgs map[string]simOrgState `json:"orgs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Orgs[id]
}

// pickupOrgs are the organizations of the consumer pickup checks.
var pickupOrgs = [3]string{"3000001", "3000002", "3000003"}

// post sends a JSON body to one of the simulator's test endpoints and
// decodes the answer.
func (s *sim) post(t *testing.T, path, body string) map[string]interface{} {
	t.Helper()
	resp, err := http.Post(s.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	var out map[string]interface{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %v", path, resp.StatusCode, err)
	}
	return out
}

// vault is a Vault server and the CLI environment to talk to it.
type vault struct {
	addr  string
	token string
	p     *proc
	dir   string
}

// env is the CLI's environment for v: Vault's variables, and OpenBao's,
// which bao prefers to Vault's when both are set.
func (v *vault) env() []string {
	return append(addrEnv(v.addr), "VAULT_TOKEN="+v.token, "VAULT_FORMAT=json", "BAO_TOKEN="+v.token, "BAO_FORMAT=json")
}

// addrEnv points the CLI or an agent, vault's or bao's, at addr.
func addrEnv(addr string) []string {
	return []string{"VAULT_ADDR=" + addr, "BAO_ADDR=" + addr}
}

// run runs the vault CLI and returns its output and exit code.
func (v *vault) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vaultBin(t), args...)
	cmd.Env = append(os.Environ(), v.env()...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			t.Fatalf("vault %v: %v", args, err)
		}
	}
	return string(out), code
}

// must runs the vault CLI and fails the test unless it succeeds.
func (v *vault) must(t *testing.T, args ...string) string {
	t.Helper()
	out, code := v.run(t, args...)
	if code != 0 {
		t.Fatalf("vault %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// data runs a read or write and returns the response's data.
func (v *vault) data(t *testing.T, args ...string) map[string]interface{} {
	t.Helper()
	out := v.must(t, args...)
	var resp struct {
		Data     map[string]interface{} `json:"data"`
		Warnings []string               `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("vault %v: not JSON: %v\n%s", args, err, out)
	}
	return resp.Data
}

// fails runs the vault CLI, expects a failure containing want, and
// returns the output.
func (v *vault) fails(t *testing.T, want string, args ...string) string {
	t.Helper()
	out, code := v.run(t, args...)
	if code == 0 || !strings.Contains(out, want) {
		t.Fatalf("vault %s: want a failure containing %q, got exit %d\n%s", strings.Join(args, " "), want, code, out)
	}
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// startDevVault starts vault server -dev with trace logs.
func startDevVault(t *testing.T, plugins string) *vault {
	t.Helper()
	return startDevVaultWith(t, plugins, nil)
}

// startDevVaultWith starts vault server -dev with env added to its
// environment, which Vault passes on to its plugins.
func startDevVaultWith(t *testing.T, plugins string, env []string) *vault {
	t.Helper()
	port := freePort(t)
	v := &vault{addr: fmt.Sprintf("http://127.0.0.1:%d", port), token: rootToken}
	v.p = start(t, env, vaultBin(t), "server", "-dev", "-dev-root-token-id="+rootToken,
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port), "-dev-plugin-dir="+plugins, "-log-level=trace")
	waitFor(t, time.Minute, "vault to start", func() bool {
		_, code := v.run(t, "status")
		return code == 0
	})
	return v
}

// enablePlugin registers both released versions with the sums that
// SHA256SUMS gives, mounts v1 at cisco-s3/, and checks that v1 runs.
func (v *vault) enablePlugin(t *testing.T, plugins string) {
	t.Helper()
	for _, ver := range []string{v1, v2} {
		v.must(t, "plugin", "register", "-sha256="+openRelease(t, ver).binarySum(t),
			"-command="+pluginName+"-"+ver, "-version="+ver, "secret", pluginName)
	}
	v.must(t, "secrets", "enable", "-path="+mountPrefix, "-plugin-version="+v1, pluginName)
	if out := v.must(t, "secrets", "list", "-detailed"); !strings.Contains(out, `"running_plugin_version": "`+v1+`"`) {
		t.Fatalf("secrets list -detailed does not show %s running:\n%s", v1, out)
	}
}

// configure writes an organization pointing at the simulator.
func (v *vault) configure(t *testing.T, s *sim, name, client, secret string, extra ...string) {
	t.Helper()
	args := append([]string{"write", mountPrefix + "/config/" + name, "provider=umbrella",
		"client_id=" + client, "client_secret=" + secret,
		"api_url=" + s.url + "/admin/v2", "token_url=" + s.url + "/auth/v2/token", "sts_url=" + s.url}, extra...)
	v.must(t, args...)
}

// assertServes checks that creds equals the simulator's current key.
func (v *vault) assertServes(t *testing.T, s *sim, name, org string) map[string]interface{} {
	t.Helper()
	creds := v.data(t, "read", mountPrefix+"/creds/"+name)
	want := s.org(t, org)
	if creds["access_key_id"] != want.CurrentKeyID || creds["secret_access_key"] != want.SecretAccessKey {
		t.Fatalf("creds %v, simulator %s", creds["access_key_id"], want.CurrentKeyID)
	}
	return creds
}

// clientToken reads the token from vault token create's JSON output.
func clientToken(t *testing.T, out string) string {
	t.Helper()
	var resp struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Auth.ClientToken == "" {
		t.Fatalf("no token in %s", out)
	}
	return resp.Auth.ClientToken
}

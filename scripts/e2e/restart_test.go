//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fileVault is a non-dev Vault on file storage that can be stopped and
// started again.
type fileVault struct {
	*vault
	config    string
	unsealKey string
}

func newFileVault(t *testing.T, plugins string) *fileVault {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	cfg := filepath.Join(dir, "vault.hcl")
	hcl := fmt.Sprintf(`
storage "file" { path = %q }
listener "tcp" {
  address     = "127.0.0.1:%d"
  tls_disable = true
}
api_addr         = "http://127.0.0.1:%d"
plugin_directory = %q
disable_mlock    = true
log_level        = "trace"
`, filepath.Join(dir, "data"), port, port, plugins)
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fileVault{vault: &vault{addr: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}, config: cfg}
}

func (f *fileVault) start(t *testing.T) {
	t.Helper()
	f.p = start(t, nil, vaultBin(t), "server", "-config="+f.config)
	waitFor(t, time.Minute, "vault to listen", func() bool {
		_, code := f.run(t, "status")
		return code == 0 || code == 2 // 2: sealed
	})
}

func (f *fileVault) initAndUnseal(t *testing.T) {
	t.Helper()
	out := f.must(t, "operator", "init", "-key-shares=1", "-key-threshold=1")
	var init struct {
		Keys      []string `json:"unseal_keys_b64"`
		RootToken string   `json:"root_token"`
	}
	if err := json.Unmarshal([]byte(out), &init); err != nil || len(init.Keys) != 1 {
		t.Fatalf("init: %v\n%s", err, out)
	}
	f.unsealKey, f.token = init.Keys[0], init.RootToken
	f.unseal(t)
}

func (f *fileVault) unseal(t *testing.T) {
	t.Helper()
	f.must(t, "operator", "unseal", f.unsealKey)
	waitFor(t, time.Minute, "vault to become active", func() bool {
		_, code := f.run(t, "read", "sys/mounts")
		return code == 0
	})
}

// TestRestartPersistence stops and starts a file-storage Vault: config and
// key survive, and automatic rotation resumes.
func TestRestartPersistence(t *testing.T) {
	plugins := pluginDir(t)
	s := startSim(t)
	f := newFileVault(t, plugins)
	f.start(t)
	f.initAndUnseal(t)
	f.enablePlugin(t, plugins)
	f.configure(t, s, "acme", simClient, simSecret, "rotation_period=1m")
	f.must(t, "write", "-f", mountPrefix+"/rotate/acme")
	before := f.assertServes(t, s, "acme", simOrg)

	f.p.stop()
	f.start(t)
	f.unseal(t)

	// The stored key and config survived; nothing rotates while Vault is down.
	after := f.assertServes(t, s, "acme", simOrg)
	if after["version"].(float64) < before["version"].(float64) {
		t.Fatalf("version went back across the restart: %v -> %v", before["version"], after["version"])
	}
	cfg := f.data(t, "read", mountPrefix+"/config/acme")
	if cfg["client_id"] != simClient || cfg["rotation_period"] != float64(60) {
		t.Fatalf("config after restart: %v", cfg)
	}

	// Automatic rotation resumes after the restart, with no request.
	served := after["access_key_id"]
	waitFor(t, waitRotate, "an automatic rotation after the restart", func() bool {
		return s.org(t, simOrg).CurrentKeyID != served
	})
	waitFor(t, 30*time.Second, "Vault to serve the rotated key", func() bool {
		creds := f.data(t, "read", mountPrefix+"/creds/acme")
		return creds["access_key_id"] == s.org(t, simOrg).CurrentKeyID
	})
}

//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDevServer runs the operator's and the consumer's whole journey on
// one Vault dev server: these steps share the server, so they run in order.
func TestDevServer(t *testing.T) {
	t.Parallel()
	plugins := pluginDir(t)
	s := startSim(t)
	v := startDevVault(t, plugins)
	v.enablePlugin(t, plugins)
	secrets := []string{simSecret, offSecret, autoSecret}

	t.Run("config write read list delete", func(t *testing.T) {
		v.configure(t, s, "acme", simClient, simSecret,
			"data_path=s3://cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567")
		cfg := v.data(t, "read", mountPrefix+"/config/acme")
		if cfg["client_id"] != simClient || cfg["bucket"] != "cisco-managed-eu-central-1" || cfg["region"] != "eu-central-1" {
			t.Fatalf("config read %v", cfg)
		}
		if _, ok := cfg["client_secret"]; ok {
			t.Fatal("config read returned client_secret")
		}
		// A second config of acme's organization needs force=true.
		v.fails(t, "already configured as config/acme", "write", mountPrefix+"/config/temp", "provider=umbrella",
			"client_id="+simClient, "client_secret="+simSecret, "api_url="+s.url+"/admin/v2", "token_url="+s.url+"/auth/v2/token")
		v.configure(t, s, "temp", simClient, simSecret, "force=true")
		list := v.must(t, "list", mountPrefix+"/config/")
		if !strings.Contains(list, `"acme"`) || !strings.Contains(list, `"temp"`) || strings.Contains(list, simSecret) {
			t.Fatalf("list %s", list)
		}
		v.must(t, "delete", mountPrefix+"/config/temp")
		if out, _ := v.run(t, "list", mountPrefix+"/config/"); strings.Contains(out, `"temp"`) {
			t.Fatalf("deleted config still listed: %s", out)
		}
	})

	t.Run("rotate then creds equal the simulator", func(t *testing.T) {
		rot := v.data(t, "write", "-f", mountPrefix+"/rotate/acme")
		if _, ok := rot["secret_access_key"]; ok {
			t.Fatal("rotate returned the secret")
		}
		creds := v.assertServes(t, s, "acme", simOrg)
		secrets = append(secrets, creds["secret_access_key"].(string))
		if creds["bucket_arn"] != "arn:aws:s3:::cisco-managed-eu-central-1" {
			t.Fatalf("creds %v", creds)
		}
	})

	t.Run("not found IAM key info shows the hint", func(t *testing.T) {
		v.configure(t, s, "off", offClient, offSecret)
		out := v.fails(t, "Cisco's dashboard", "write", "-f", mountPrefix+"/rotate/off")
		if !strings.Contains(out, "Code: 400") || !strings.Contains(out, "Not found IAM key info") {
			t.Fatalf("hint: %s", out)
		}
		v.fails(t, "import/off", "read", mountPrefix+"/creds/off")
	})

	t.Run("a failure at Cisco is a 502 with its message alone", func(t *testing.T) {
		s.post(t, "/_sim/faults", `{"kind":"error200","count":1,"org_id":"`+simOrg+`"}`)
		out := v.fails(t, "Internal error", "write", "-f", mountPrefix+"/rotate/acme")
		if !strings.Contains(out, "Code: 502") || strings.Contains(out, "error occurred") {
			t.Fatalf("a rotation Cisco refused: %s", out)
		}
		v.assertServes(t, s, "acme", simOrg)
	})

	t.Run("bad input gets 400s", func(t *testing.T) {
		logged := len(v.p.log.String())
		v.fails(t, `did you mean "rotation_period"?`, "write", mountPrefix+"/config/acme", "rotaton_period=30d")
		for _, path := range []string{"config/acme..eu", "config/-acme", "config/acme.", "creds/acme/eu"} {
			v.fails(t, "a name is 1 to 64 characters", "read", mountPrefix+"/"+path)
		}
		v.fails(t, "a name is 1 to 64 characters", "write", mountPrefix+"/config/acme..eu", "provider=umbrella")
		v.fails(t, "Code: 400", "write", mountPrefix+"/config/acme", "rotation_period=2w")
		// Bad input is the caller's mistake: nothing at ERROR in the server log.
		if errs := strings.Count(v.p.log.String()[logged:], "[ERROR]"); errs != 0 {
			t.Fatalf("bad input logged %d ERROR lines:\n%s", errs, v.p.log.String()[logged:])
		}
		for _, args := range [][]string{
			{"write", mountPrefix + "/config/bad", "provider=meraki", "client_id=a", "client_secret=b"},
			{"write", mountPrefix + "/config/bad", "provider=umbrella", "client_id=a"},
			{"write", mountPrefix + "/config/bad", "provider=umbrella", "client_id=a", "client_secret=b", "api_url=http://example.com"},
			{"write", mountPrefix + "/config/bad", "provider=umbrella", "client_id=a", "client_secret=b", "rotation_period=90d"},
			{"write", mountPrefix + "/config/bad", "provider=umbrella", "client_id=a", "client_secret=b", "data_path=s3://elsewhere/x"},
			{"write", mountPrefix + "/config/bad", "provider=umbrella", "client_id=a", "client_secret=b", "rotation_schedule=0 3 1 1 *"},
			{"write", "-f", mountPrefix + "/rotate/nobody"},
			{"write", mountPrefix + "/import/acme", "access_key_id=AKIAONLYID0000000001"},
		} {
			v.fails(t, "Code: 400", args...)
		}
	})

	t.Run("import", func(t *testing.T) {
		created := time.Now().UTC().Add(-24 * time.Hour).Format("2006-01-02T15:04:05")
		const id, secret = "AKIAIMPORTEDE2E00001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
		v.configure(t, s, "imported", offClient, offSecret, "force=true") // off's organization
		// A made-up key AWS would reject: stored only without the check.
		v.fails(t, "AWS STS rejected access_key_id", "write", mountPrefix+"/import/imported", "access_key_id="+id,
			"secret_access_key="+secret, "key_creation_date="+created)
		v.must(t, "write", mountPrefix+"/import/imported", "access_key_id="+id, "secret_access_key="+secret,
			"key_creation_date="+created, "verify=false")
		creds := v.data(t, "read", mountPrefix+"/creds/imported")
		if creds["access_key_id"] != id || creds["secret_access_key"] != secret || creds["version"] != float64(1) {
			t.Fatalf("imported creds %v", creds)
		}
		secrets = append(secrets, secret)
	})

	t.Run("ACL: a consumer reads creds only", func(t *testing.T) {
		policy := filepath.Join(t.TempDir(), "consumer.hcl")
		if err := os.WriteFile(policy, []byte(consumerPolicy), 0o600); err != nil {
			t.Fatal(err)
		}
		v.must(t, "policy", "write", "cisco-s3-consumer", policy)
		out := v.must(t, "token", "create", "-policy=cisco-s3-consumer")
		consumer := &vault{addr: v.addr, token: clientToken(t, out)}
		consumer.assertServes(t, s, "acme", simOrg)
		consumer.fails(t, "permission denied", "read", mountPrefix+"/config/acme")
		consumer.fails(t, "permission denied", "list", mountPrefix+"/config/")
		consumer.fails(t, "permission denied", "write", "-f", mountPrefix+"/rotate/acme")
	})

	t.Run("automatic rotation and Vault Agent re-render", func(t *testing.T) {
		v.configure(t, s, "auto", autoClient, autoSecret, "rotation_period=1m")
		v.must(t, "write", "-f", mountPrefix+"/rotate/auto")
		agent := startAgent(t, v, "auto")
		first := s.org(t, autoOrg)
		waitFor(t, 30*time.Second, "the agent's first render", func() bool {
			return agent.rendered() == credentialsFile(first.CurrentKeyID, first.SecretAccessKey)
		})
		// No request from here on: the scheduler must rotate by itself.
		var rotatedAt time.Time
		waitFor(t, waitRotate, "an automatic rotation", func() bool {
			if s.org(t, autoOrg).CurrentKeyID != first.CurrentKeyID {
				rotatedAt = time.Now()
				return true
			}
			return false
		})
		now := s.org(t, autoOrg)
		secrets = append(secrets, first.SecretAccessKey, now.SecretAccessKey)
		// ttl is at most 50 s here; the agent's default would be 5 minutes.
		waitFor(t, 75*time.Second, "the agent to re-render after the rotation", func() bool {
			cur := s.org(t, autoOrg)
			return agent.rendered() == credentialsFile(cur.CurrentKeyID, cur.SecretAccessKey)
		})
		t.Logf("agent re-rendered %v after the rotation", time.Since(rotatedAt).Round(time.Second))
		v.assertServes(t, s, "auto", autoOrg)
		v.must(t, "write", mountPrefix+"/config/auto", "disable_automated_rotation=true")
		for _, sec := range secrets {
			if strings.Contains(agent.p.log.String(), sec) {
				t.Fatal("a secret appeared in the agent log")
			}
		}
	})

	t.Run("plugin upgrade and rollback keep serving the key", func(t *testing.T) {
		// docs/operations.md's upgrade, then its rollback: pin a version,
		// reload. Each keeps the key, and rotations go on.
		for _, ver := range []string{v2, v1} {
			before := v.data(t, "read", mountPrefix+"/creds/acme")
			v.must(t, "secrets", "tune", "-plugin-version="+ver, mountPrefix+"/")
			v.must(t, "plugin", "reload", "-plugin="+pluginName)
			waitFor(t, 30*time.Second, "the mount to run "+ver, func() bool {
				out, _ := v.run(t, "secrets", "list", "-detailed")
				return strings.Contains(out, `"running_plugin_version": "`+ver+`"`)
			})
			after := v.assertServes(t, s, "acme", simOrg)
			if after["version"] != before["version"] || after["access_key_id"] != before["access_key_id"] {
				t.Fatalf("key changed across the move to %s: %v -> %v", ver, before["access_key_id"], after["access_key_id"])
			}
			v.must(t, "write", "-f", mountPrefix+"/rotate/acme")
			creds := v.assertServes(t, s, "acme", simOrg)
			secrets = append(secrets, creds["secret_access_key"].(string))
		}
	})

	t.Run("no secret in the trace-level server log", func(t *testing.T) {
		log := v.p.log.String()
		if !strings.Contains(log, "[TRACE]") {
			t.Fatal("the server log is not at trace level")
		}
		for _, sec := range secrets {
			if strings.Contains(log, sec) {
				t.Fatalf("a secret appeared in the server log")
			}
		}
		t.Logf("checked %d secrets against %d bytes of trace log", len(secrets), len(log))
	})
}

const consumerPolicy = `
path "cisco-s3/creds/acme" {
  capabilities = ["read"]
}
`

func credentialsFile(id, secret string) string {
	return fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", id, secret)
}

// agent is a running Vault Agent rendering an AWS credentials file per
// organization.
type agent struct {
	p     *proc
	dest  string // the first organization's file
	dests map[string]string
}

func (a *agent) rendered() string { return readRendered(a.dest) }

func (a *agent) renderedFor(name string) string { return readRendered(a.dests[name]) }

func readRendered(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b)) + "\n"
}

func startAgent(t *testing.T, v *vault, names ...string) *agent {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(v.token), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
`, v.addr, tokenFile)
	dests := map[string]string{}
	for _, name := range names {
		dests[name] = filepath.Join(dir, name+"-aws-credentials")
		config += fmt.Sprintf(`
template {
  destination = %q
  contents    = <<EOT
{{ with secret "cisco-s3/creds/%s" }}[default]
aws_access_key_id = {{ .Data.access_key_id }}
aws_secret_access_key = {{ .Data.secret_access_key }}
{{ end }}
EOT
}
`, dests[name], name)
	}
	cfgFile := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, addrEnv(v.addr), vaultBin(t), "agent", "-config="+cfgFile, "-log-level=trace")
	return &agent{p: p, dest: dests[names[0]], dests: dests}
}

package backend

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// A keyCreationDate from Cisco far in the past for a key the plugin just
// rotated does not make the key due: its age counts from the rotation, and
// the discrepancy is logged.
func TestKey_BogusCreationDateDoesNotMakeTheKeyDue(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.injectFault(ciscosim.Fault{Kind: "old_date"})
	env.mustRotate("acme")
	creds := env.mustRead("creds/acme")
	want := env.clock.Now().Add(30 * 24 * time.Hour).Format(time.RFC3339)
	if creds.Data["next_vault_rotation"] != want {
		t.Fatalf("next_vault_rotation = %v, want %s", creds.Data["next_vault_rotation"], want)
	}
	calls := env.sim.State().RotateCalls
	env.tick()
	if env.sim.State().RotateCalls != calls {
		t.Fatal("the key was rotated again at once")
	}
	if !strings.Contains(env.logs.String(), "far from the time of the rotation") {
		t.Fatal("the discrepancy was not logged")
	}
}

// TestSecretsNeverPrinted: any %v, %+v or %#v of a value holding a secret,
// as a log line or a panic would print it, redacts the secret.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-VALUE-never-printed"
	key := storedKey(t, map[string]interface{}{"access_key_id": "AKIA", "secret_access_key": secret})
	values := map[string]interface{}{
		"orgConfig":      orgConfig{ClientID: "id", ClientSecret: secret},
		"*orgConfig":     &orgConfig{ClientID: "id", ClientSecret: secret},
		"keyState":       *key,
		"*keyState":      key,
		"orgEntry":       orgEntry{config: &orgConfig{ClientSecret: secret}, key: key},
		"panic of entry": panicText(func() { panic(&orgConfig{ClientSecret: secret}) }),
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, secret) {
				t.Errorf("%s printed with %s leaks the secret: %s", name, verb, out)
			}
		}
	}
}

func panicText(f func()) (out string) {
	defer func() { out = fmt.Sprint(recover()) }()
	f()
	return ""
}

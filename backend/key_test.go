package backend

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// In the last day before the lockout a failed rotation is retried within
// lastDayBackoff, never after an hour-long wait.
func TestKey_LastDayBackoffIsShort(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &keyState{AccessKeyID: "AKIAEXAMPLE000000001", KeyCreationDate: created, LastVaultRotation: created, ConsecutiveFailures: 10}
	now := created.Add(keyLifetime - 20*time.Hour)
	k.markFailed("Cisco: Internal error", now, false, true)
	if wait := k.RetryAt.Sub(now); wait > lastDayBackoff {
		t.Fatalf("a retry 20 h before the lockout waits %v", wait)
	}
}

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
	values := map[string]interface{}{
		"orgConfig":      orgConfig{ClientID: "id", ClientSecret: secret},
		"*orgConfig":     &orgConfig{ClientID: "id", ClientSecret: secret},
		"keyState":       keyState{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"*keyState":      &keyState{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"orgEntry":       orgEntry{config: &orgConfig{ClientSecret: secret}, key: &keyState{SecretAccessKey: secret}},
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

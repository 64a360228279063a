package backend

import (
	"strings"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// refreshed is a key refreshed in the simulator's dashboard, as an
// operator would import it.
func (e *testEnv) refreshed() map[string]interface{} {
	e.t.Helper()
	org, ok := e.sim.RefreshKey(testOrgID)
	if !ok {
		e.t.Fatal("the simulator refused a dashboard refresh")
	}
	return map[string]interface{}{"access_key_id": org.CurrentKeyID, "secret_access_key": org.SecretAccessKey, "key_creation_date": org.KeyCreationDate}
}

// mistype changes the last character of a secret.
func mistype(secret string) string {
	last := "A"
	if strings.HasSuffix(secret, "A") {
		last = "B"
	}
	return secret[:len(secret)-1] + last
}

func TestImport_ChecksTheKeyWithAWS(t *testing.T) {
	t.Run("a working key is stored as verified", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		resp := env.mustWrite("import/acme", env.refreshed())
		if len(resp.Warnings) != 0 {
			t.Fatalf("warnings: %v", resp.Warnings)
		}
		creds := env.assertServesSimKey("acme")
		if creds.Data["key_verified_at"] != "2026-01-10T12:00:00Z" || creds.Data["key_verify_error"] != "" {
			t.Fatalf("creds: key_verified_at=%v key_verify_error=%v", creds.Data["key_verified_at"], creds.Data["key_verify_error"])
		}
	})

	refusals := map[string]struct {
		spoil func(data map[string]interface{}, prevID string)
		want  string
	}{
		"wrong secret": {func(d map[string]interface{}, _ string) {
			d["secret_access_key"] = mistype(d["secret_access_key"].(string))
		}, "AWS STS rejected secret_access_key"},
		"the id before the refresh": {func(d map[string]interface{}, prevID string) { d["access_key_id"] = prevID }, "AWS STS rejected access_key_id"},
	}
	for name, tc := range refusals {
		t.Run("refuses "+name+" and stores nothing", func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", nil)
			env.mustRotate("acme")
			before, _ := getKey(t0ctx, env.storage, "acme")
			prevID := env.simOrg().CurrentKeyID
			data := env.refreshed()
			tc.spoil(data, prevID)
			resp, err := env.write("import/acme", data)
			mustBadRequest(t, resp, err, tc.want)
			mustBadRequest(t, resp, err, "Nothing was stored")
			if strings.Contains(resp.Error().Error(), data["secret_access_key"].(string)) {
				t.Fatal("the refusal quotes the secret")
			}
			after, _ := getKey(t0ctx, env.storage, "acme")
			if after.Version != before.Version || after.AccessKeyID != before.AccessKeyID {
				t.Fatalf("a refused import changed the stored key: version %d→%d", before.Version, after.Version)
			}
			env.assertNoSecretsLogged(data["secret_access_key"].(string))
		})
	}

	t.Run("a key AWS does not know yet is checked again", func(t *testing.T) {
		env := newTestEnv(t, withSimConfig(ciscosim.Config{
			APIKeys:          []ciscosim.APIKey{{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}}},
			NoRateLimits:     true,
			PropagationDelay: 100 * time.Millisecond,
		}))
		env.configure("acme", nil)
		resp := env.mustWrite("import/acme", env.refreshed())
		if len(resp.Warnings) != 0 {
			t.Fatalf("warnings: %v", resp.Warnings)
		}
		env.assertServesSimKey("acme")
	})

	t.Run("an old key id AWS does not know is refused at once", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		data := env.refreshed()
		data["access_key_id"] = "AKIANOTAKEYOFANYORG1"
		env.clock.Advance(time.Hour) // the key is no longer fresh
		calls := env.sim.State().STSCalls
		resp, err := env.write("import/acme", data)
		mustBadRequest(t, resp, err, "AWS STS rejected access_key_id")
		if n := env.sim.State().STSCalls - calls; n != 1 {
			t.Fatalf("%d STS calls for a key an hour old, want 1", n)
		}
	})

	t.Run("a check without an answer stores the key with a warning", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		env.injectFault(ciscosim.Fault{Kind: "sts_5xx", Count: 100})
		resp := env.mustWrite("import/acme", env.refreshed())
		if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "could not check it") {
			t.Fatalf("warnings: %v", resp.Warnings)
		}
		creds := env.assertServesSimKey("acme")
		if creds.Data["key_verified_at"] != nil || !strings.Contains(creds.Data["key_verify_error"].(string), "unknown") {
			t.Fatalf("creds: key_verified_at=%v key_verify_error=%v", creds.Data["key_verified_at"], creds.Data["key_verify_error"])
		}
	})

	t.Run("verify=false and key_check=false skip the check", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		data := env.refreshed()
		data["verify"] = false
		data["secret_access_key"] = "wrongwrongwrongwrongwrongwrongwrongwrong"
		resp := env.mustWrite("import/acme", data)
		if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "without a check") {
			t.Fatalf("warnings: %v", resp.Warnings)
		}
		env.mustWrite("config/acme", map[string]interface{}{"key_check": false})
		env.mustWrite("import/acme", env.refreshed())
		if n := env.sim.State().STSCalls; n != 0 {
			t.Fatalf("%d STS calls", n)
		}
	})
}

// Importing the very key id that is marked stale proves nothing about it:
// the mark stays unless AWS accepts the key.
func TestImport_OfTheStaleKeyKeepsTheMarkUnlessItWorks(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	org := env.simOrg()
	env.injectFault(ciscosim.Fault{Kind: "5xx"})
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("the rotation should have failed")
	}
	same := map[string]interface{}{"access_key_id": org.CurrentKeyID, "secret_access_key": org.SecretAccessKey, "key_creation_date": org.KeyCreationDate}

	env.injectFault(ciscosim.Fault{Kind: "sts_5xx"})
	resp := env.mustWrite("import/acme", same)
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale || k.RetryAt.IsZero() {
		t.Fatalf("an unchecked import of the stale key lifted the mark: %v", k)
	}
	if !strings.Contains(strings.Join(resp.Warnings, " "), "stays marked stale") {
		t.Fatalf("warnings: %v", resp.Warnings)
	}

	// AWS may accept a key that Cisco replaced for some seconds: a check
	// right after the mark proves nothing.
	env.mustWrite("import/acme", same)
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale {
		t.Fatal("a check right after the stale mark lifted it")
	}
	env.clock.Advance(staleCheckSettle)
	env.mustWrite("import/acme", same)
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale {
		t.Fatal("an import that AWS accepted a minute after the mark kept the stale mark")
	}
}

func TestVerify(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	resp, err := env.write("verify/acme", nil)
	mustBadRequest(t, resp, err, "no key is stored")
	resp, err = env.write("verify/other", nil)
	mustBadRequest(t, resp, err, "write config/other first")

	env.mustRotate("acme")
	org := env.simOrg()
	resp = env.mustWrite("verify/acme", nil)
	if resp.Data["result"] != "valid" || resp.Data["account"] != org.AccountID || resp.Data["access_key_id"] != org.CurrentKeyID {
		t.Fatalf("verify: %v", resp.Data)
	}

	// A refresh in the dashboard kills the served key.
	env.sim.RefreshKey(testOrgID)
	resp = env.mustWrite("verify/acme", nil)
	if resp.Data["result"] != "invalid" || len(resp.Warnings) == 0 {
		t.Fatalf("verify of a replaced key: %v %v", resp.Data, resp.Warnings)
	}
	for _, v := range resp.Data {
		if s, ok := v.(string); ok && strings.Contains(s, org.SecretAccessKey) {
			t.Fatal("verify answered the secret")
		}
	}
	st := env.mustRead("status").Data["organizations"].([]map[string]interface{})[0]
	if !strings.Contains(st["key_verify_error"].(string), "InvalidClientTokenId") {
		t.Fatalf("status key_verify_error: %v", st["key_verify_error"])
	}
	families, _ := env.scrape()
	if v, _ := sample(families, "cisco_s3_key_checks_total", map[string]string{"trigger": "verify", "outcome": "invalid"}); v != 1 {
		t.Fatalf("cisco_s3_key_checks_total{verify,invalid} = %v", v)
	}
	env.assertNoSecretsLogged(org.SecretAccessKey)
}

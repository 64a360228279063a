package backend

import (
	"strings"
	"testing"
)

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
	st := env.statusRows()[0]
	if !strings.Contains(st["key_verify_error"], "InvalidClientTokenId") {
		t.Fatalf("status key_verify_error: %v", st["key_verify_error"])
	}
	families, _ := env.scrape()
	if v, _ := sample(families, "cisco_s3_key_checks_total", map[string]string{"trigger": "verify", "outcome": "invalid"}); v != 1 {
		t.Fatalf("cisco_s3_key_checks_total{verify,invalid} = %v", v)
	}
	env.assertNoSecretsLogged(org.SecretAccessKey)
}

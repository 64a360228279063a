package backend

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// A second config for a Cisco organization already configured on the
// mount is refused with a 400 that names the other; force=true stores it
// with a warning on both.
func TestSharedOrg_SecondConfigIsRefusedUnlessForced(t *testing.T) {
	env := newTestEnv(t)
	env.configure("demo", nil)
	resp, err := env.write("config/acme", map[string]interface{}{"provider": "umbrella", "client_id": testClientID,
		"client_secret": testClientSecret, "api_url": env.srv.URL + "/admin/v2", "token_url": env.srv.URL + "/auth/v2/token"})
	mustBadRequest(t, resp, err, "already configured as config/demo")
	if r, _ := env.read("config/acme"); r != nil {
		t.Fatal("the refused config was stored")
	}
	resp = env.mustWrite("config/acme", map[string]interface{}{"provider": "umbrella", "client_id": testClientID,
		"client_secret": testClientSecret, "api_url": env.srv.URL + "/admin/v2", "token_url": env.srv.URL + "/auth/v2/token",
		"force": true})
	if resp == nil || !strings.Contains(strings.Join(resp.Warnings, " "), "config/demo") {
		t.Fatalf("a forced write has no warning naming the other config: %v", resp)
	}
	for name, other := range map[string]string{"acme": "config/demo", "demo": "config/acme"} {
		if w := strings.Join(env.mustRead("config/"+name).Warnings, " "); !strings.Contains(w, other) {
			t.Fatalf("config/%s read warnings %q do not name %s", name, w, other)
		}
	}
	// The same data_path is the same organization too.
	env.configureOwnOrg("globex", map[string]interface{}{"data_path": "s3://cisco-managed-us-east-1/1234567_abc"})
	resp, err = env.write("config/initech", map[string]interface{}{"provider": "umbrella", "client_id": "other",
		"client_secret": "other-secret", "data_path": "s3://cisco-managed-us-east-1/1234567_abc", "verify_connection": false})
	mustBadRequest(t, resp, err, "config/globex")
}

// Two configs forced onto one organization never heal each other's keys
// back and forth: each rotation under one name kills the other's key, and
// the heal does not rotate a key whose organization another config shares.
func TestSharedOrg_HealsDoNotPingPong(t *testing.T) {
	env := forcedPairEnv(t)
	rotations := env.simOrg().Rotations
	env.minuteTicks(20)
	env.waitSimIdle()
	if got := env.simOrg().Rotations - rotations; got != 0 {
		t.Fatalf("%d heal rotations between two configs of one organization", got)
	}
	resp := env.mustRead("creds/demo")
	if resp.Data["key_state"] != "rejected" || !strings.Contains(strings.Join(resp.Warnings, " "), "config/acme") {
		t.Fatalf("demo: key_state %v, warnings %v", resp.Data["key_state"], resp.Warnings)
	}
}

// A heal blocked because another config shared the organization resumes
// once that config is deleted: the block is not kept for good.
func TestSharedOrg_HealResumesOnceTheOtherConfigIsGone(t *testing.T) {
	env := forcedPairEnv(t)
	env.minuteTicks(5)
	k, _ := getKey(t0ctx, env.storage, "demo")
	t.Logf("demo before delete: rejected=%v heal_blocked=%v", k.Rejected(), k.HealBlocked() != "")
	// The operator follows the advice: keep one config per organization.
	env.mustRequest(logical.DeleteOperation, "config/acme", nil)
	rotations := env.simOrg().Rotations
	env.minuteTicks(120)
	env.waitSimIdle()
	resp := env.mustRead("creds/demo")
	k, _ = getKey(t0ctx, env.storage, "demo")
	t.Logf("2h after delete: rotations=%d key_state=%v served=%v cisco_current=%v heal_blocked=%v next=%v ttl=%v",
		env.simOrg().Rotations-rotations, resp.Data["key_state"], resp.Data["access_key_id"], env.simOrg().CurrentKeyID,
		k.HealBlocked() != "", resp.Data["next_vault_rotation"], resp.Data["ttl"])
	if resp.Data["access_key_id"] != env.simOrg().CurrentKeyID {
		t.Fatalf("demo still serves its dead key 2h after the sharing config was deleted; heal stays blocked: %q", k.HealBlocked())
	}
}

// Two configs on one Cisco organization through two API keys (another
// client_id, no data_path) cannot be told apart from two organizations:
// each heals at most once, since a key a heal stored that dies again
// within a day is reported, not healed.
func TestSharedOrg_SecondAPIKeyHealsOncePerConfig(t *testing.T) {
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys: []ciscosim.APIKey{
			{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}},
			{ClientID: "second-api-key", ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}},
		},
		NoRateLimits: true,
	}))
	env.configure("demo", map[string]interface{}{"key_check_interval": "10m"})
	resp := env.mustWrite("config/acme", map[string]interface{}{"provider": "umbrella", "client_id": "second-api-key",
		"client_secret": testClientSecret, "api_url": env.srv.URL + "/admin/v2", "token_url": env.srv.URL + "/auth/v2/token",
		"sts_url": env.srv.URL, "key_check_interval": "10m"})
	t.Logf("second config write: warnings %v", resp)
	env.mustRotate("demo")
	env.waitKey("demo", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	env.mustRotate("acme") // kills demo's key
	env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	rotations := env.simOrg().Rotations
	for i := 0; i < 120; i++ {
		env.minuteTicks(1)
		env.waitProbesIdle()
	}
	env.waitSimIdle()
	got := env.simOrg().Rotations - rotations
	t.Logf("heal rotations in 2 h: %d", got)
	if got > 2 {
		t.Fatalf("%d heal rotations in 2 h between two configs of one organization, want at most one each", got)
	}
}

// forcedPairEnv has demo and acme forced onto one Cisco organization, both
// rotated and accepted by AWS, checked every minute: acme's rotation killed
// demo's key.
func forcedPairEnv(t *testing.T) *testEnv {
	env := newTestEnv(t)
	env.configure("demo", map[string]interface{}{"key_check_interval": "1m"})
	env.configure("acme", map[string]interface{}{"key_check_interval": "1m", "force": true})
	env.mustRotate("demo")
	env.waitKey("demo", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	env.mustRotate("acme") // kills demo's key
	env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	return env
}

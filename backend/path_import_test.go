package backend

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
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

// waitSimInFlight waits until Cisco is handling a rotation.
func (e *testEnv) waitSimInFlight() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.sim.State().InFlight == 0 {
		if time.Now().After(deadline) {
			e.t.Fatal("no rotation reached Cisco")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestImport(t *testing.T) {
	const id, secret = "AKIAIMPORTED00000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
	cases := map[string]struct {
		data map[string]interface{}
		want string
	}{
		"missing id":      {map[string]interface{}{"secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00"}, "access_key_id is required"},
		"bad id":          {map[string]interface{}{"access_key_id": "akia-lower", "secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00"}, "access_key_id must be"},
		"missing secret":  {map[string]interface{}{"access_key_id": id, "key_creation_date": "2026-01-01T00:00:00"}, "secret_access_key is required"},
		"bad secret":      {map[string]interface{}{"access_key_id": id, "secret_access_key": "short!", "key_creation_date": "2026-01-01T00:00:00"}, "secret_access_key must be"},
		"missing date":    {map[string]interface{}{"access_key_id": id, "secret_access_key": secret}, "key_creation_date is required"},
		"bad date":        {map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "last tuesday"}, "is not a date"},
		"future date":     {map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2026-02-01T00:00:00Z"}, "in the future"},
		"locked key date": {map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2025-10-01T00:00:00"}, "90 days or more ago"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", nil)
			resp, err := env.write("import/acme", tc.data)
			mustBadRequest(t, resp, err, tc.want)
			if strings.Contains(resp.Error().Error(), "short!") {
				t.Fatal("the rejected secret was echoed")
			}
		})
	}

	t.Run("stores a new version scheduled from its creation date", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
		env.mustRotate("acme")
		prev := env.simOrg().CurrentKeyID
		resp := env.mustWrite("import/acme", map[string]interface{}{
			"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00", "verify": false,
		})
		if resp.Data["version"] != 2 || resp.Data["old_access_key_id"] != prev || resp.Data["key_creation_date"] != "2026-01-01T00:00:00Z" {
			t.Fatalf("import response %v", resp.Data)
		}
		creds := env.mustRead("creds/acme")
		if creds.Data["secret_access_key"] != secret || creds.Data["access_key_id"] != id {
			t.Fatal("creds do not serve the imported key")
		}
		// Created 2026-01-01 with a 30-day period: due 2026-01-31, though
		// Vault learnt of it on 2026-01-10.
		if creds.Data["next_vault_rotation"] != "2026-01-31T00:00:00Z" || creds.Data["expires_at"] != "2026-04-01T00:00:00Z" {
			t.Fatalf("imported key timing: next %v expires %v", creds.Data["next_vault_rotation"], creds.Data["expires_at"])
		}
		if strings.Contains(env.logs.String(), secret) {
			t.Fatal("the imported secret was logged")
		}
	})
	t.Run("the served key again stores nothing new", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		env.mustRotate("acme")
		rotated := env.simOrg().CurrentKeyID
		data := map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00", "verify": false}
		first := env.mustWrite("import/acme", data)
		stored, _ := env.storage.Get(t.Context(), keyPrefix+"acme")
		again := env.mustWrite("import/acme", data)
		if again.Data["version"] != first.Data["version"] || again.Data["old_access_key_id"] != rotated {
			t.Fatalf("re-import: version %v after %v, old_access_key_id %v (want %s)", again.Data["version"], first.Data["version"],
				again.Data["old_access_key_id"], rotated)
		}
		if after, _ := env.storage.Get(t.Context(), keyPrefix+"acme"); string(after.Value) != string(stored.Value) {
			t.Fatal("a re-import that changes nothing stored a new record")
		}
		if !slices.ContainsFunc(again.Warnings, func(w string) bool { return strings.Contains(w, "already served") }) {
			t.Fatalf("the re-import does not say that nothing new was stored: %v", again.Warnings)
		}
	})
	t.Run("needs a config", func(t *testing.T) {
		env := newTestEnv(t)
		resp, err := env.write("import/acme", map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00"})
		mustBadRequest(t, resp, err, "write config/acme first")
	})
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
			if after.Version() != before.Version() || after.AccessKeyID() != before.AccessKeyID() {
				t.Fatalf("a refused import changed the stored key: version %d→%d", before.Version(), after.Version())
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
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale() || k.RetryAt().IsZero() {
		t.Fatalf("an unchecked import of the stale key lifted the mark: %v", k)
	}
	if !strings.Contains(strings.Join(resp.Warnings, " "), "stays marked stale") {
		t.Fatalf("warnings: %v", resp.Warnings)
	}

	// AWS may accept a key that Cisco replaced for some seconds: a check
	// right after the mark proves nothing.
	env.mustWrite("import/acme", same)
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale() {
		t.Fatal("a check right after the stale mark lifted it")
	}
	env.clock.Advance(bucketkey.StaleCheckSettle)
	env.mustWrite("import/acme", same)
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale() {
		t.Fatal("an import that AWS accepted a minute after the mark kept the stale mark")
	}
}

// An import that started before a rotation landed would store the
// dashboard key over the key that replaced it: it is refused instead.
func TestImport_RacingARotationIsRefused(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	dashboard := env.refreshed()
	env.injectFault(ciscosim.Fault{Kind: "delay", DelayMS: 300})
	rotated := make(chan error, 1)
	go func() {
		resp, err := env.rotate("acme")
		if err == nil && resp.IsError() {
			err = resp.Error()
		}
		rotated <- err
	}()
	env.waitSimInFlight()
	resp, err := env.write("import/acme", dashboard)
	if err := <-rotated; err != nil {
		t.Fatalf("the rotation failed: %v", err)
	}
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) || coded.Code() != http.StatusConflict {
		t.Fatalf("import racing a rotation: resp %v, err %v; want 409", resp, err)
	}
	if org := env.simOrg(); org.CurrentKeyID == dashboard["access_key_id"] {
		t.Fatal("the rotation did not replace the dashboard key")
	}
	env.assertServesSimKey("acme")
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Origin() != bucketkey.OriginRotation {
		t.Fatalf("stored key came from %s", k.Origin())
	}
}

// Re-importing the key whose successor Cisco issued and the plugin lost
// keeps the mark, even when AWS still accepts that key.
func TestImport_OfAKeyCiscoReplacedKeepsItsMark(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d", "sts_url": acceptingSTS(t)})
	env.mustRotate("acme")
	old := env.simOrg()
	env.loseRotatedKey()
	env.clock.Advance(2 * time.Minute)
	env.mustWrite("import/acme", map[string]interface{}{"access_key_id": old.CurrentKeyID,
		"secret_access_key": old.SecretAccessKey, "key_creation_date": old.KeyCreationDate})
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale() || !k.Replaced() {
		t.Fatalf("the import lifted the mark of a key Cisco replaced: stale=%v replaced=%v", k.Stale(), k.Replaced())
	}
	env.assertTickRotatesOnce(2 * time.Hour)
}

// An import whose check lifts the mark of the re-imported key is watched
// as a recovery's lift is.
func TestImport_ThatLiftsAStaleMarkIsRechecked(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	served := env.simOrg()
	env.failWithoutCisco()
	env.clock.Advance(2 * time.Minute)
	env.mustWrite("import/acme", map[string]interface{}{"access_key_id": served.CurrentKeyID,
		"secret_access_key": served.SecretAccessKey, "key_creation_date": served.KeyCreationDate})
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale() || k.StaleCleared() == "" {
		t.Fatalf("the import did not lift the mark: stale=%v stale_cleared=%q", k.Stale(), k.StaleCleared())
	}
	env.sim.RefreshKey(testOrgID)
	env.awaitRemark(bucketkey.RecheckOffsets[0])
}

// Importing the lifted key again keeps its re-checks: the import says
// nothing about a Cisco call that may still land.
func TestImport_OfALiftedKeyKeepsItsRechecks(t *testing.T) {
	for _, verify := range []bool{true, false} {
		t.Run(fmt.Sprintf("verify=%v", verify), func(t *testing.T) {
			env := newLiftedEnv(t)
			served := env.simOrg()
			env.mustWrite("import/acme", map[string]interface{}{"access_key_id": served.CurrentKeyID, "verify": verify,
				"secret_access_key": served.SecretAccessKey, "key_creation_date": served.KeyCreationDate})
			env.sim.RefreshKey(testOrgID)
			env.awaitRemark(bucketkey.RecheckOffsets[0])
		})
	}
}

// skewedClock sends requests signed 20 minutes in the past, as a Vault
// host with a wrong clock does.
type skewedClock struct{}

func (skewedClock) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Amz-Date", time.Now().UTC().Add(-20*time.Minute).Format("20060102T150405Z"))
	return http.DefaultTransport.RoundTrip(r)
}

// AWS answers SignatureDoesNotMatch for a skewed clock and a wrong region
// scope too; neither says the secret is wrong. (The check itself is tested
// in internal/stscheck.)
func TestKeyCheck_SignatureRefusedForAnotherCauseIsUnknown(t *testing.T) {
	env := newTestEnv(t)
	env.b.checker = stscheck.New(stscheck.WithTransport(skewedClock{}))
	// An import of a correct key through that clock is stored with a
	// warning, not refused as a wrong secret.
	env.configure("acme", nil)
	resp := env.mustWrite("import/acme", env.refreshed())
	if len(resp.Warnings) == 0 || !strings.Contains(strings.Join(resp.Warnings, " "), "could not check") {
		t.Fatalf("import through a skewed clock: warnings %v", resp.Warnings)
	}
}

// An unchecked re-import of the very key a stale mark is on keeps the mark,
// although the key passed a check before the mark: only a check late
// enough after the mark proves anything. With key_check=false nothing
// would ever check it again.
func TestImport_UncheckedReimportKeepsTheStaleMark(t *testing.T) {
	for _, keyCheckOff := range []bool{false, true} {
		t.Run(map[bool]string{false: "verify=false", true: "key_check=false"}[keyCheckOff], func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", nil)
			env.mustRotate("acme")
			env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
			if keyCheckOff {
				env.mustWrite("config/acme", map[string]interface{}{"key_check": false})
			}
			k, _ := env.b.cached("acme")
			dead := *k.key
			env.injectFault(ciscosim.Fault{Kind: "drop"}) // Cisco rotates, the reply is lost
			if _, err := env.rotate("acme"); err == nil {
				t.Fatal("want a failed rotation")
			}
			if k, _ := env.b.cached("acme"); !k.key.Stale() {
				t.Fatal("setup: not stale")
			}
			env.clock.Advance(2 * time.Minute)
			// The operator re-imports the key the creds showed (verify=false).
			resp := env.mustWrite("import/acme", map[string]interface{}{"access_key_id": dead.AccessKeyID(),
				"secret_access_key": dead.SecretAccessKey(), "key_creation_date": dead.KeyCreationDate().UTC().Format(time.RFC3339), "verify": false})
			k, _ = env.b.cached("acme")
			t.Logf("import warnings %v", resp.Warnings)
			t.Logf("after re-import: state=%s stale_cleared=%q cisco_current=%s served=%s", k.key.Shown(), k.key.StaleCleared(), env.simOrg().CurrentKeyID, k.key.AccessKeyID())
			if k.key.Shown() != "stale" {
				t.Errorf("the stale mark of a key Cisco replaced was dropped by an unchecked re-import")
			}
			env.minuteTicks(30)
			st := env.mustRead("creds/acme").Data
			t.Logf("30 min later: key_state=%v served=%v cisco_current=%v", st["key_state"], st["access_key_id"], env.simOrg().CurrentKeyID)
		})
	}
}

// An unchecked re-import of the very key AWS rejects keeps the rejection,
// as a stale mark in the same spot is kept.
func TestImport_UncheckedReimportKeepsTheRejection(t *testing.T) {
	env := watchedEnv(t, map[string]interface{}{"rotate_rejected_key": false})
	env.sim.RefreshKey(testOrgID)
	env.minuteTicks(4)
	resp := env.mustRead("creds/acme")
	if resp.Data["key_state"] != "rejected" {
		t.Fatalf("setup: %v", resp.Data["key_state"])
	}
	env.mustWrite("config/acme", map[string]interface{}{"key_check_interval": "1h"})
	k, _ := env.b.cached("acme")
	env.mustWrite("import/acme", map[string]interface{}{"access_key_id": k.key.AccessKeyID(),
		"secret_access_key": k.key.SecretAccessKey(), "key_creation_date": k.key.KeyCreationDate().UTC().Format(time.RFC3339), "verify": false})
	if st := env.mustRead("creds/acme").Data["key_state"]; st != "rejected" {
		t.Fatalf("an unchecked re-import of the rejected key shows it %v", st)
	}
}

package backend

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// switchableSTS passes checks to the simulator's STS until reject is set;
// then it rejects every key, as a broken proxy or a wrong endpoint would.
type switchableSTS struct {
	url    string
	reject atomic.Bool
}

func newSwitchableSTS(t *testing.T, sim string) *switchableSTS {
	target, _ := url.Parse(sim)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // a dropped connection is a test's fault, not news
	s := &switchableSTS{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.reject.Load() {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>`+
				`<Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// switchableEnv has acme checked every minute through a switchable STS,
// with a key it accepted.
func switchableEnv(t *testing.T) (*testEnv, *switchableSTS) {
	env := newTestEnv(t)
	sts := newSwitchableSTS(t, env.srv.URL)
	env.configure("acme", map[string]interface{}{"key_check_interval": "1m", "sts_url": sts.url})
	env.mustRotate("acme")
	env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	return env, sts
}

// watchedEnv has acme configured with a key that AWS accepted, checked
// every minute.
func watchedEnv(t *testing.T, extra map[string]interface{}) *testEnv {
	env := newTestEnv(t)
	cfg := map[string]interface{}{"key_check_interval": "1m"}
	for k, v := range extra {
		cfg[k] = v
	}
	env.configure("acme", cfg)
	env.mustRotate("acme")
	env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	return env
}

// minuteTicks advances the clock a minute and ticks, n times, as Vault
// does.
func (e *testEnv) minuteTicks(n int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		e.clock.Advance(time.Minute)
		e.tick()
	}
}

// A refresh in Cisco's dashboard that nothing told Vault of kills the
// served key. The scheduled check finds it, a second rejection a minute
// later confirms it, and the heal rotates: creds serve Cisco's current key
// again within the interval and a few ticks.
func TestKeyWatch_DashboardRefreshIsFoundAndHealed(t *testing.T) {
	env := watchedEnv(t, nil)
	if _, ok := env.sim.RefreshKey(testOrgID); !ok {
		t.Fatal("no refresh")
	}
	rotations := env.simOrg().Rotations
	env.minuteTicks(1)
	resp := env.mustRead("creds/acme")
	if resp.Data["key_state"] != "current" {
		t.Fatalf("one rejection made the key %v; it takes a second to confirm", resp.Data["key_state"])
	}
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.RejectedAt().IsZero() {
		t.Fatal("the scheduled check did not record the rejection")
	}
	for i := 0; i < 3 && env.mustRead("creds/acme").Data["access_key_id"] != env.simOrg().CurrentKeyID; i++ {
		env.minuteTicks(1)
	}
	env.waitSimIdle()
	resp = env.assertServesSimKey("acme")
	if resp.Data["key_state"] != "current" {
		t.Fatalf("after the heal the key is %v", resp.Data["key_state"])
	}
	if got := env.simOrg().Rotations - rotations; got != 1 {
		t.Fatalf("the heal rotated %d times, want 1", got)
	}
	if !hasEvent(env, bucketkey.NoticeKeyRejected, "name", "acme") || !hasEvent(env, bucketkey.NoticeRotate, "trigger", triggerHeal) {
		t.Fatal("no key-rejected event, or no rotate event with trigger heal")
	}
	if !strings.Contains(env.logs.String(), bucketkey.LogKeyMayBeDead) {
		t.Fatal("no ERROR line says the served key is dead")
	}
	families, _ := env.scrape()
	if v, _ := sample(families, "cisco_s3_key_checks_total", map[string]string{"trigger": "scheduled", "outcome": "invalid"}); v < 2 {
		t.Fatalf("cisco_s3_key_checks_total{trigger=scheduled,outcome=invalid} = %v, want 2 or more", v)
	}
	if v, _ := sample(families, "cisco_s3_rotations_total", map[string]string{"name": "acme", "trigger": "heal", "result": "success"}); v != 1 {
		t.Fatalf("heal rotations counted %v, want 1", v)
	}
	env.assertNoSecretsLogged()
}

// With rotate_rejected_key=false a dead key is shown, warned of and
// alerted on, and nothing rotates.
func TestKeyWatch_HealOffReportsOnly(t *testing.T) {
	env := watchedEnv(t, map[string]interface{}{"rotate_rejected_key": false})
	env.sim.RefreshKey(testOrgID)
	rotations := env.simOrg().Rotations
	env.minuteTicks(4)
	resp := env.mustRead("creds/acme")
	if resp.Data["key_state"] != "rejected" {
		t.Fatalf("key_state %v, want rejected", resp.Data["key_state"])
	}
	if len(resp.Warnings) == 0 || !strings.Contains(strings.Join(resp.Warnings, " "), "is dead") {
		t.Fatalf("creds warnings %v do not say the key is dead", resp.Warnings)
	}
	if got := env.simOrg().Rotations - rotations; got != 0 {
		t.Fatalf("%d rotations with the heal off", got)
	}
	families, _ := env.scrape()
	if v := gaugeValue(t, families, keyRejectedMetric, "acme"); v != 1 {
		t.Fatalf("%s = %v, want 1", keyRejectedMetric, v)
	}
	rows := env.statusRows()
	if rows[0]["key_state"] != "rejected" {
		t.Fatalf("status row %v", rows[0])
	}
	// The operator imports the dashboard key: the check passes and the
	// key is current again.
	org := env.simOrg()
	env.mustWrite("import/acme", map[string]interface{}{"access_key_id": org.CurrentKeyID,
		"secret_access_key": org.SecretAccessKey, "key_creation_date": org.KeyCreationDate})
	if st := env.mustRead("creds/acme").Data["key_state"]; st != "current" {
		t.Fatalf("after the import the key is %v", st)
	}
}

// An STS that rejects every key shows every key rejected, and rotates each
// organization at most once: the healed key never passed a check, so its
// rejection proves nothing.
func TestKeyWatch_STSThatRejectsEverythingRotatesOnce(t *testing.T) {
	env, sts := switchableEnv(t)
	rotations := env.simOrg().Rotations
	sts.reject.Store(true)
	env.minuteTicks(30)
	env.waitSimIdle()
	if got := env.simOrg().Rotations - rotations; got != 1 {
		t.Fatalf("%d rotations in 30 minutes of an STS that rejects every key, want 1", got)
	}
	if st := env.mustRead("creds/acme").Data["key_state"]; st != "rejected" {
		t.Fatalf("key_state %v, want rejected", st)
	}
}

// A key that AWS never accepted is never rotated for being rejected.
func TestKeyWatch_KeyThatNeverPassedIsNotHealed(t *testing.T) {
	env := newTestEnv(t)
	sts := newSwitchableSTS(t, env.srv.URL)
	sts.reject.Store(true)
	env.configure("acme", map[string]interface{}{"key_check_interval": "1m", "sts_url": sts.url})
	env.mustRotate("acme")
	rotations := env.simOrg().Rotations
	env.minuteTicks(10)
	if got := env.simOrg().Rotations - rotations; got != 0 {
		t.Fatalf("%d rotations of a key that never passed a check", got)
	}
	resp := env.mustRead("creds/acme")
	if resp.Data["key_state"] != "rejected" || !strings.Contains(strings.Join(resp.Warnings, " "), "never accepted") {
		t.Fatalf("key_state %v, warnings %v", resp.Data["key_state"], resp.Warnings)
	}
}

// A dashboard key imported after the heal replaced it is refused with a
// message that says so.
func TestKeyWatch_ImportAfterAHealSaysThePluginReplacedIt(t *testing.T) {
	env := watchedEnv(t, nil)
	dashboard, _ := env.sim.RefreshKey(testOrgID)
	env.minuteTicks(4)
	env.waitSimIdle()
	if env.simOrg().CurrentKeyID == dashboard.CurrentKeyID {
		t.Fatal("the heal did not rotate")
	}
	resp, err := env.write("import/acme", map[string]interface{}{"access_key_id": dashboard.CurrentKeyID,
		"secret_access_key": dashboard.SecretAccessKey, "key_creation_date": dashboard.KeyCreationDate})
	mustBadRequest(t, resp, err, "already replaced it")
	env.assertServesSimKey("acme")
}

// Scheduled checks are spread and bounded: with the interval off, no
// scheduled check runs at all.
func TestKeyWatch_IntervalOffChecksNothing(t *testing.T) {
	env := watchedEnv(t, map[string]interface{}{"key_check_interval": 0})
	calls := env.sim.State().STSCalls
	env.minuteTicks(90)
	if got := env.sim.State().STSCalls - calls; got != 0 {
		t.Fatalf("%d STS calls with key_check_interval=0", got)
	}
}

// A key stored while its predecessor was stale is re-checked 5 and 15
// minutes later: a Cisco call that timed out may land late and kill it.
// When it does, the key is marked stale again and recovered.
func TestKeyWatch_LateCiscoCallAfterAnImportIsFound(t *testing.T) {
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys:      []ciscosim.APIKey{{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}}},
		NoRateLimits: true,
	}))
	env.configure("acme", map[string]interface{}{"key_check_interval": 0})
	env.mustRotate("acme")
	env.loseRotatedKey()
	// The operator imports what the dashboard shows after the lost reply.
	org := env.simOrg()
	env.mustWrite("import/acme", map[string]interface{}{"access_key_id": org.CurrentKeyID,
		"secret_access_key": org.SecretAccessKey, "key_creation_date": org.KeyCreationDate})
	k, _ := getKey(t0ctx, env.storage, "acme")
	if k.Stale() || k.RecheckFrom().IsZero() {
		t.Fatalf("the imported key: stale %v, re-checks from %v", k.Stale(), k.RecheckFrom())
	}
	// The late call lands: Cisco replaces the imported key.
	env.sim.RefreshKey(testOrgID)
	env.awaitRemark(bucketkey.RecheckOffsets[0])
	if !hasEvent(env, bucketkey.NoticeRotateFail, "name", "acme") {
		t.Fatal("the re-mark sent no rotate-fail event")
	}
	env.assertRecovers()
}

// One STS hiccup at the routine check of a key killed outside Vault does
// not push the next check a whole interval: a check without an answer is
// tried again within minutes.
func TestKeyWatch_CheckWithoutAnAnswerIsTriedAgainSoon(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"key_check_interval": "1h"})
	env.mustRotate("acme")
	env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	killedAt := env.clock.Now()
	env.sim.RefreshKey(testOrgID)
	// Tick every minute; just before the routine check is due, queue one
	// STS 5xx.
	injected := false
	var firstFound time.Duration = -1
	for i := 1; i <= 150; i++ {
		e, _ := env.b.cached("acme")
		if at, ok := bucketkey.NextCheck("acme", e.key, e.config.facts()); ok && !injected && !at.After(env.clock.Now().Add(time.Minute)) {
			env.injectFault(ciscosim.Fault{Kind: "sts_5xx", Count: 1})
			injected = true
			t.Logf("minute %d: routine check due at +%v; injected one sts_5xx", i, at.Sub(killedAt))
		}
		env.clock.Advance(time.Minute)
		env.tick()
		env.waitProbesIdle()
		if k, _ := env.b.cached("acme"); injected && i%10 == 0 || k.key.CheckResult() != "" && i < 45 && injected {
			t.Logf("minute %d: check_result=%s tried=%v rejected_at=%v", i, k.key.CheckResult(), k.key.CheckTriedAt().Sub(killedAt), k.key.RejectedAt().Sub(killedAt))
		}
		if st := env.mustRead("creds/acme").Data; (st["key_state"] != "current" || st["access_key_id"] == env.simOrg().CurrentKeyID) && firstFound < 0 {
			firstFound = env.clock.Now().Sub(killedAt)
			t.Logf("dead key first not shown current %v after the kill (state %v)", firstFound, st["key_state"])
		}
	}
	if firstFound < 0 || firstFound > time.Hour+3*time.Minute {
		t.Fatalf("the dead key was shown current for %v after the kill with key_check_interval=1h", firstFound)
	}
}

// A heal that failed leaves a retry; a later pass ends the rejection and
// the retry with it, so a working key not due for months is not rotated.
func TestKeyWatch_FailedHealRetryDoesNotRotateAWorkingKey(t *testing.T) {
	env, sts := switchableEnv(t)
	// STS rejects for a few minutes (a broken proxy), and Cisco's rotation
	// API is off for the org (a non-ambiguous failure).
	sts.reject.Store(true)
	env.sim.SetOrg(ciscosim.Org{ID: testOrgID, Disabled: true})
	rotations := env.simOrg().Rotations
	for i := 0; i < 4; i++ {
		env.minuteTicks(1)
		env.waitProbesIdle()
	}
	k, _ := env.b.cached("acme")
	t.Logf("after 4 min: state=%s rejected=%v failures=%d retry_at=+%v err=%q", k.key.Shown(), k.key.Rejected(), k.key.ConsecutiveFailures(), k.key.RetryAt().Sub(env.clock.Now()), k.key.LastError())
	// STS is fixed; Cisco is fine again. The operator verifies: AWS accepts the key.
	sts.reject.Store(false)
	env.sim.SetOrg(ciscosim.Org{ID: testOrgID, Disabled: false})
	env.mustWrite("verify/acme", nil)
	k, _ = env.b.cached("acme")
	resp := env.mustRead("config/acme")
	t.Logf("after verify: state=%s rejected=%v retry_at=%v next_vault_rotation=%v ttl-ish", k.key.Shown(), k.key.Rejected(), k.key.RetryAt(), resp.Data["next_vault_rotation"])
	served := k.key.AccessKeyID()
	for i := 0; i < 70; i++ {
		env.minuteTicks(1)
	}
	env.waitSimIdle()
	k, _ = env.b.cached("acme")
	t.Logf("70 min later: rotations=%d served %s -> %s trigger=%s", env.simOrg().Rotations-rotations, served, k.key.AccessKeyID(), k.key.Trigger())
	if env.simOrg().Rotations != rotations {
		t.Fatalf("a working key (rotation_period 60d) was rotated %d times after its rejection ended", env.simOrg().Rotations-rotations)
	}
}

// A scheduled check that answers late is not recorded over a newer
// verify's rejection: the rejection stands, and a second one a minute
// later confirms it.
func TestKeyWatch_AnOlderCheckDoesNotOverwriteANewerRejection(t *testing.T) {
	env := watchedEnv(t, nil)
	// The scheduled check's STS call answers (valid) 1.5 s late; the
	// verify made meanwhile is rejected.
	env.injectFault(ciscosim.Fault{Kind: "sts_delay", Count: 1, DelayMS: 1500})
	env.injectFault(ciscosim.Fault{Kind: "sts_reject", Count: 1})
	calls := env.sim.State().STSCalls
	env.clock.Advance(time.Minute)
	ticked := make(chan error, 1)
	go func() {
		_, err := env.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: env.storage})
		ticked <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for env.sim.State().STSCalls == calls {
		if time.Now().After(deadline) {
			t.Fatal("the tick started no scheduled check")
		}
		time.Sleep(5 * time.Millisecond)
	}
	env.clock.Advance(time.Second)
	if resp := env.mustWrite("verify/acme", nil); resp.Data["result"] == "valid" {
		t.Fatalf("verify answered %v while STS rejects", resp.Data)
	}
	if err := <-ticked; err != nil {
		t.Fatal(err)
	}
	env.waitProbesIdle()
	k, err := getKey(t0ctx, env.storage, "acme")
	if err != nil || k.RejectedAt().IsZero() || k.CheckResult() != stscheck.Invalid {
		t.Fatalf("the late scheduled pass erased the newer rejection: rejected_at=%v check_result=%v (%v)", k.RejectedAt(), k.CheckResult(), err)
	}
}

// A rejection that storage refuses to store is still shown, and its event
// and ERROR line go out once, not at every tick.
func TestKeyWatch_RejectionStorageRefusedIsShownAndReportedOnce(t *testing.T) {
	env := watchedEnv(t, map[string]interface{}{"rotate_rejected_key": false})
	env.sim.RefreshKey(testOrgID)
	env.storage.setFailPut(failKeyPuts(-1))
	env.b.storeRetryWait = time.Millisecond // storage stays down: no need to wait it out
	env.minuteTicks(2)
	env.waitProbesIdle()
	if st := env.mustRead("creds/acme").Data["key_state"]; st != "rejected" {
		t.Fatalf("key_state %v after two rejections a minute apart that storage refused, want rejected", st)
	}
	env.minuteTicks(3)
	env.waitProbesIdle()
	events := 0
	for _, ev := range env.events.Events {
		if string(ev.Type) == bucketkey.NoticeKeyRejected {
			events++
		}
	}
	if lines := strings.Count(env.logs.String(), bucketkey.LogKeyMayBeDead); events != 1 || lines != 1 {
		t.Fatalf("%d key-rejected events and %d ERROR lines over 5 ticks, want 1 of each", events, lines)
	}
}

// A flapping STS, which rejects every key for a minute or two every six
// minutes, rotates a working key at most once an hour, and marks it stale
// again at most once: a re-mark needs a confirmation a minute later, as a
// rejection does, and re-marks and heals share the heal's storm guard.
func TestKeyWatch_FlappingSTSRotatesAWorkingKeyAtMostOnce(t *testing.T) {
	for _, c := range []struct{ rejecting, phase int }{{1, 0}, {1, 1}, {1, 3}, {1, 5}, {2, 0}, {2, 1}, {2, 3}, {2, 5}} {
		rejecting := c.rejecting
		t.Run(fmt.Sprintf("%d rejecting ticks in 6, phase %d", rejecting, c.phase), func(t *testing.T) {
			env := newTestEnv(t)
			sts := newSwitchableSTS(t, env.srv.URL)
			env.configure("acme", map[string]interface{}{"rotation_period": "30d", "key_check_interval": "1m", "sts_url": sts.url})
			env.mustRotate("acme")
			env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
			env.liftWorkingStaleKey()
			env.waitProbesIdle()
			rotations, events := env.simOrg().Rotations, len(env.events.Events)
			for minute := 0; minute < 60; minute++ {
				sts.reject.Store((minute+c.phase)%6 < rejecting)
				env.clock.Advance(time.Minute)
				env.tick()
				env.waitProbesIdle()
				env.waitSimIdle()
			}
			remarks := 0
			for _, ev := range env.events.Events[events:] {
				if string(ev.Type) == bucketkey.NoticeRotateFail {
					remarks++
				}
			}
			if got := env.simOrg().Rotations - rotations; got > 1 || remarks > 1 {
				t.Fatalf("a flapping STS caused %d rotations and %d re-marks in an hour; want at most 1 of each", got, remarks)
			}
			sts.reject.Store(false)
			env.minuteTicks(2)
			env.waitProbesIdle()
			env.assertServesSimKey("acme")
		})
	}
}

// The storm guard lasts a day: a key that dies within a day of a heal is
// shown rejected and not healed; the first check after the day heals it.
func TestKeyWatch_StormGuardLapsesAfterADay(t *testing.T) {
	env := watchedEnv(t, nil)
	env.sim.RefreshKey(testOrgID)
	rotations := env.simOrg().Rotations
	for i := 0; i < 4 && env.simOrg().Rotations == rotations; i++ {
		env.minuteTicks(1)
		env.waitProbesIdle()
		env.waitSimIdle()
	}
	if env.simOrg().Rotations != rotations+1 {
		t.Fatal("the first dashboard refresh was not healed")
	}
	env.minuteTicks(2)
	env.waitProbesIdle()
	env.sim.RefreshKey(testOrgID) // again, within the day
	env.minuteTicks(5)
	env.waitProbesIdle()
	resp := env.mustRead("creds/acme")
	if env.simOrg().Rotations != rotations+1 || resp.Data["key_state"] != "rejected" {
		t.Fatalf("a second death within a day: %d rotations, key_state %v; want no heal, shown rejected",
			env.simOrg().Rotations-rotations, resp.Data["key_state"])
	}
	if !strings.Contains(strings.Join(resp.Warnings, " "), "until ") {
		t.Fatalf("the warning does not say until when the heal waits: %v", resp.Warnings)
	}
	env.clock.Advance(bucketkey.HealCooldown)
	for i := 0; i < 4 && env.simOrg().Rotations == rotations+1; i++ {
		env.minuteTicks(1)
		env.waitProbesIdle()
		env.waitSimIdle()
	}
	env.assertServesSimKey("acme")
}

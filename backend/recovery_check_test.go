package backend

// The check of a stale key before its recovery rotates it, and the re-checks
// of a key whose mark a check lifted. The check runs outside the name's lock
// or joins a rotation's collapse, and must not let either serve a key that
// Cisco replaced or answer a rotation that did not happen.

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// waitProbesIdle waits until no probe or re-check runs.
func (e *testEnv) waitProbesIdle() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.b.probes.mu.Lock()
		n := len(e.b.probes.running)
		e.b.probes.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d probes still run after 10 s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertRecovers ticks and requires acme to serve Cisco's current key.
func (e *testEnv) assertRecovers() {
	e.t.Helper()
	e.tick()
	if k, _ := getKey(t0ctx, e.storage, "acme"); k.Stale() || k.AccessKeyID() != e.simOrg().CurrentKeyID {
		e.t.Fatalf("the tick did not recover the re-marked key: %v", k)
	}
}

// A stale key that AWS still accepts was not replaced by Cisco: recovery
// lifts the mark and does not rotate.
func TestRecovery_StaleKeyThatStillWorksIsNotRotated(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	served := env.simOrg().CurrentKeyID
	env.injectFault(ciscosim.Fault{Kind: "5xx"}) // Cisco did not act
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("the rotation should have failed")
	}
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale() {
		t.Fatal("an ambiguous failure should mark the key stale")
	}
	rotations := env.simOrg().Rotations
	env.clock.Advance(2 * time.Hour)
	env.tick()
	k, _ := getKey(t0ctx, env.storage, "acme")
	if k.Stale() || k.AccessKeyID() != served || env.simOrg().Rotations != rotations {
		t.Fatalf("after recovery: stale=%v key=%s (served %s), Cisco rotations %d→%d", k.Stale(), k.AccessKeyID(), served, rotations, env.simOrg().Rotations)
	}
	if !strings.Contains(k.StaleCleared(), "Cisco did not replace it") || k.VerifiedAt().IsZero() || !k.RetryAt().IsZero() {
		t.Fatalf("lifted mark: stale_cleared=%q verified=%v retry=%v", k.StaleCleared(), k.VerifiedAt(), k.RetryAt())
	}
	cfg := env.mustRead("config/acme")
	if cfg.Data["stale_cleared"] != k.StaleCleared() || cfg.Data["key_state"] != "current" {
		t.Fatalf("config read: stale_cleared=%v key_state=%v", cfg.Data["stale_cleared"], cfg.Data["key_state"])
	}
	env.assertServesSimKey("acme")
}

// A stale key that AWS rejects is rotated, and so is one that cannot be
// checked.
func TestRecovery_StaleKeyThatDoesNotPassIsRotated(t *testing.T) {
	for name, setup := range map[string]func(env *testEnv){
		"invalid: Cisco rotated, the reply was lost": func(env *testEnv) {
			env.injectFault(ciscosim.Fault{Kind: "drop"})
		},
		"unknown: STS is down": func(env *testEnv) {
			env.injectFault(ciscosim.Fault{Kind: "5xx"})
			env.injectFault(ciscosim.Fault{Kind: "sts_5xx", Count: 1000})
		},
	} {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
			env.mustRotate("acme")
			setup(env)
			if _, err := env.rotate("acme"); err == nil {
				t.Fatal("the rotation should have failed")
			}
			rotations := env.simOrg().Rotations
			env.clock.Advance(2 * time.Hour)
			env.tick()
			if got := env.simOrg().Rotations; got != rotations+1 {
				t.Fatalf("Cisco rotations %d→%d, want one recovery rotation", rotations, got)
			}
			env.assertServesSimKey("acme")
			if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale() {
				t.Fatal("still stale after the recovery rotation")
			}
		})
	}
}

// A crash between the WAL entry and the Cisco call leaves a stale mark
// that the next tick, under a minute later, recovers. The key works: the
// recovery waits until a check can prove it, then lifts the mark, and
// Cisco rotates nothing.
func TestRecovery_YoungMarkOnAWorkingKeyWaitsForAProvingCheck(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	k := env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	if _, err := framework.PutWAL(t0ctx, env.storage, walKindRotate, &rotationWAL{Name: "acme", Version: k.Version(),
		PrevAccessKeyID: k.AccessKeyID(), Started: env.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	restarted := env.sibling()
	if err := restarted.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	before := env.simOrg().Rotations
	for _, step := range []time.Duration{time.Second, 30 * time.Second, 31 * time.Second} {
		env.clock.Advance(step)
		restarted.tick()
		if got := env.simOrg().Rotations; got != before {
			t.Fatalf("after %v: Cisco rotated a key that works (%d→%d)", step, before, got)
		}
	}
	stored, _ := getKey(t0ctx, env.storage, "acme")
	if stored.Stale() || stored.StaleCleared() == "" {
		t.Fatalf("a minute after the mark: stale=%v stale_cleared=%q", stored.Stale(), stored.StaleCleared())
	}
	restarted.assertServesSimKey("acme")
}

// A key that Cisco certainly replaced (it issued a key that was lost) is
// rotated even if AWS still accepts it.
func TestRecovery_ReplacedKeyIsRotatedWhateverTheCheckSays(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d", "sts_url": acceptingSTS(t)})
	env.mustRotate("acme")
	env.loseRotatedKey()
	env.assertTickRotatesOnce(2 * time.Hour)
}

// A tick recovers stale keys one after another, and a check of an STS
// that does not answer takes its whole timeout: after one such check, the
// tick's other recoveries rotate without one.
func TestRecovery_UnreachableSTSIsCheckedOncePerTick(t *testing.T) {
	orgs := []string{testOrgID, "2000002", "2000003"}
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys:      []ciscosim.APIKey{{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: orgs}},
		NoRateLimits: true,
	}))
	env.b.probes.firstWait = time.Hour // only the recoveries check
	names := []string{"a", "b", "c"}
	for i, name := range names {
		env.configure(name, map[string]interface{}{"org_id": orgs[i], "rotation_period": "30d"})
		env.mustRotate(name)
		env.injectFault(ciscosim.Fault{Kind: "5xx", OrgID: orgs[i]})
		if _, err := env.rotate(name); err == nil {
			t.Fatalf("%s: the rotation should have failed", name)
		}
	}
	env.b.checker = stscheck.New(stscheck.WithTimeout(100 * time.Millisecond))
	env.clock.Advance(2 * time.Hour)
	before := env.sim.State()
	env.injectFault(ciscosim.Fault{Kind: "sts_delay", DelayMS: 1000, Count: 10})
	env.tick()
	after := env.sim.State()
	if n := after.STSCalls - before.STSCalls; n != 1 {
		t.Fatalf("%d checks of an STS that does not answer in one tick, want 1", n)
	}
	for i, name := range names {
		if got, was := after.Orgs[orgs[i]].Rotations, before.Orgs[orgs[i]].Rotations; got != was+1 {
			t.Fatalf("%s: Cisco rotations %d→%d, want one recovery", name, was, got)
		}
		if served := env.mustRead("creds/" + name).Data["access_key_id"]; served != after.Orgs[orgs[i]].CurrentKeyID {
			t.Fatalf("%s serves %v, Cisco's current key is %s", name, served, after.Orgs[orgs[i]].CurrentKeyID)
		}
	}
}

// A lifted mark is checked again later: a Cisco call that timed out may
// still replace the key, and then the key is marked stale and recovered.
func TestRecovery_LiftedKeyThatAWSLaterRejectsIsRecovered(t *testing.T) {
	env := newLiftedEnv(t)
	if _, ok := env.sim.RefreshKey(testOrgID); !ok { // the late call lands
		t.Fatal("the simulator refused the refresh")
	}
	k := env.awaitRemark(bucketkey.RecheckOffsets[0])
	if !strings.Contains(k.LastError(), "Cisco replaced it after all") || k.CheckResult() != stscheck.Invalid {
		t.Fatalf("re-marked key: error %q, check %s", k.LastError(), k.CheckResult())
	}
	before := env.simOrg().Rotations
	env.tick()
	if got := env.simOrg().Rotations; got != before+1 {
		t.Fatalf("Cisco rotations %d→%d: the rejected key was not recovered", before, got)
	}
	env.assertServesSimKey("acme")
}

// The re-checks of a lifted key survive a restart: those missed while
// Vault was down run at the first tick, even after the whole window.
func TestRecovery_RestartResumesTheRechecksOfALiftedKey(t *testing.T) {
	for _, down := range []time.Duration{7 * time.Minute, 16 * time.Minute, 3 * time.Hour} {
		t.Run(down.String(), func(t *testing.T) {
			env := newLiftedEnv(t)
			env.sim.RefreshKey(testOrgID) // the late call lands while Vault is down
			env.clock.Advance(down)
			restarted := env.sibling()
			if err := restarted.boot(env.storage); err != nil {
				t.Fatal(err)
			}
			restarted.awaitRemark(0)
			restarted.assertRecovers()
		})
	}
}

// One re-check stands for every one whose time has come: a long outage
// costs one STS call, and the re-checks end with the window.
func TestRecovery_RechecksEndWithTheWindow(t *testing.T) {
	env := newLiftedEnv(t)
	env.waitProbesIdle() // the rotated key's probe
	checks := func() int { return env.sim.State().STSCalls }
	before := checks()
	env.clock.Advance(20 * time.Minute)
	env.tick()
	k := env.waitKey("acme", func(k *keyState) bool { return k.RechecksDone() > 0 })
	if k.RechecksDone() != len(bucketkey.RecheckOffsets) || checks() != before+1 {
		t.Fatalf("after the window: %d re-checks recorded, %d STS calls; want %d and 1", k.RechecksDone(), checks()-before, len(bucketkey.RecheckOffsets))
	}
	env.clock.Advance(time.Hour)
	env.tick()
	env.waitProbesIdle()
	if checks() != before+1 {
		t.Fatalf("a re-check ran after the window: %d STS calls", checks()-before)
	}
}

// remarkWithStorageRefusing runs the first re-check of acme's lifted key,
// which STS rejects, then the confirming one a minute later with storage
// refusing key writes, and waits for the re-mark to be tried.
func (e *testEnv) remarkWithStorageRefusing() {
	e.t.Helper()
	e.clock.Advance(bucketkey.RecheckOffsets[0])
	e.tick()
	e.waitKey("acme", func(k *keyState) bool { return !k.RejectedAt().IsZero() })
	e.storage.setFailPut(failKeyPuts(-1))
	e.clock.Advance(bucketkey.RejectionConfirmAfter)
	e.tick()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), "could not store the stale mark of a rejected key") {
		if time.Now().After(deadline) {
			e.t.Fatal("the re-mark was never tried")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A re-mark that storage refuses leaves a WAL entry, so that a restart
// does not serve the rejected key as current.
func TestRecovery_RemarkThatStorageRefusesSurvivesARestart(t *testing.T) {
	env := newLiftedEnv(t)
	env.sim.RefreshKey(testOrgID)
	env.remarkWithStorageRefusing()
	env.storage.setFailPut(nil)
	restarted := env.sibling()
	if err := restarted.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	restarted.tick()
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale() && k.AccessKeyID() != env.simOrg().CurrentKeyID {
		t.Fatalf("after a restart the rejected key %s is served as current", k.AccessKeyID())
	}
	restarted.assertServesSimKey("acme")
}

// A lift on a key whose schedule makes it due is re-checked too, however
// often the rotation that follows is refused: until a rotation lands, the
// lifted key is the one served.
func TestRecovery_LiftWhoseScheduledRotationFailsIsRechecked(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1h"})
	env.mustRotate("acme")
	env.failWithoutCisco()
	env.injectFault(ciscosim.Fault{Kind: "error200", Count: 1000})
	env.clock.Advance(2 * time.Hour)
	env.tick()
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale() || k.RecheckFrom().IsZero() || k.ConsecutiveFailures() == 0 {
		t.Fatalf("want a lifted key whose rotation failed: %v, failures %d", k, k.ConsecutiveFailures())
	}
	env.sim.RefreshKey(testOrgID) // the timed-out call lands
	env.awaitRemark(bucketkey.RecheckOffsets[0])
}

// A re-check that falls while key_check is off runs once it is on again.
func TestRecovery_RechecksSurviveKeyCheckTurnedOffAndOn(t *testing.T) {
	env := newLiftedEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d", "key_check": false})
	env.sim.RefreshKey(testOrgID)
	env.clock.Advance(bucketkey.RecheckOffsets[0])
	env.tick()
	env.waitProbesIdle()
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale() {
		t.Fatal("a key was checked with key_check off")
	}
	env.configure("acme", map[string]interface{}{"rotation_period": "30d", "key_check": true})
	env.awaitRemark(0)
}

// A re-check that gets no answer is no re-check: it stays due, and a later
// tick asks again, so one STS outage cannot end the watch on a lifted key.
func TestRecovery_RecheckWithoutAnAnswerIsTriedAgain(t *testing.T) {
	env := newLiftedEnv(t)
	env.waitProbesIdle() // the rotated key's probe
	env.sim.RefreshKey(testOrgID)
	env.injectFault(ciscosim.Fault{Kind: "sts_5xx"})
	env.clock.Advance(20 * time.Minute)
	env.tick()
	env.waitProbesIdle()
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale() || k.RechecksDone() != 0 {
		t.Fatalf("after a re-check without an answer: stale=%v, re-checks done %d; want not stale, 0", k.Stale(), k.RechecksDone())
	}
	env.awaitRemark(time.Minute)
}

// A re-mark that storage refused, of a key that works after all (STS
// rejected it once), is lifted later: the WAL entry written for the mark
// does not outlive the lift, so a restart serves the working key as
// current, with no ERROR line and no event.
func TestRecovery_RemarkThatStorageRefusedDoesNotOutliveItsLift(t *testing.T) {
	env := newLiftedEnv(t)
	env.waitProbesIdle()
	env.b.storeRetryWait = time.Millisecond // storage stays down for the re-mark
	env.injectFault(ciscosim.Fault{Kind: "sts_reject", Count: 2})
	env.remarkWithStorageRefusing()
	env.waitProbesIdle()
	// Storage is back and STS accepts the key: the recovery's check lifts
	// the mark once it can prove the key works.
	env.storage.setFailPut(nil)
	rotations := env.simOrg().Rotations
	for i := 0; i < 3; i++ {
		env.clock.Advance(time.Minute)
		env.tick()
		env.waitProbesIdle()
	}
	if k, _ := getKey(t0ctx, env.storage, "acme"); k == nil || k.Stale() {
		t.Fatalf("the working key's mark was not lifted: %+v", k)
	}
	if env.simOrg().Rotations != rotations {
		t.Fatal("the working key was rotated")
	}
	logged, sent := len(env.logs.String()), len(env.events.Events)
	restarted := env.sibling() // shares the logs and events
	if err := restarted.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	restarted.tick()
	if st := restarted.mustRead("creds/acme").Data["key_state"]; st != "current" {
		t.Fatalf("after a restart the working key reads %v", st)
	}
	if strings.Contains(env.logs.String()[logged:], "a rotation did not finish") || len(env.events.Events) != sent {
		t.Fatalf("after a restart the working key was re-marked from a stale WAL entry (%d events)", len(env.events.Events)-sent)
	}
}

// A lifted key that AWS rejects, confirmed before its re-check is due (by
// verify, with the heal off), is marked stale at the re-check and
// recovered, and the re-check is not run again at every tick.
func TestRecovery_RecheckOfAKeyAlreadyRejectedMarksItStale(t *testing.T) {
	env := newLiftedEnv(t)
	env.mustWrite("config/acme", map[string]interface{}{"rotate_rejected_key": false})
	env.waitProbesIdle()
	env.sim.RefreshKey(testOrgID) // the late call lands
	env.clock.Advance(time.Minute)
	env.mustWrite("verify/acme", nil)
	env.clock.Advance(time.Minute)
	env.mustWrite("verify/acme", nil)
	if st := env.mustRead("creds/acme").Data["key_state"]; st != "rejected" {
		t.Fatalf("key_state %v after two rejections a minute apart, want rejected", st)
	}
	env.clock.Advance(bucketkey.RecheckOffsets[0])
	env.tick()
	env.waitKey("acme", func(k *keyState) bool { return k.Stale() || k.Version() > 1 })
	env.tick()
	env.waitSimIdle()
	env.assertServesSimKey("acme")
	calls := env.sim.State().STSCalls
	env.minuteTicks(3)
	env.waitProbesIdle()
	if extra := env.sim.State().STSCalls - calls; extra > 2 {
		t.Fatalf("%d STS calls in 3 ticks after the recovery: a re-check runs at every tick", extra)
	}
}

package backend

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// Interleavings of the key check with rotations: the check runs outside
// the name's lock or joins a rotation's collapse, and must not let either
// serve a key that Cisco replaced or answer a rotation that did not happen.

// failWithoutCisco fails a rotation of acme with an outcome the plugin
// cannot know and Cisco did not act on: the key is stale and works.
func (e *testEnv) failWithoutCisco() {
	e.t.Helper()
	e.injectFault(ciscosim.Fault{Kind: "5xx"})
	if _, err := e.rotate("acme"); err == nil {
		e.t.Fatal("the rotation should have failed")
	}
}

// loseRotatedKey has Cisco rotate acme's key and the plugin fail to store
// the new one: Cisco certainly replaced the served key.
func (e *testEnv) loseRotatedKey() {
	e.t.Helper()
	e.storage.setFailPut(failKeyPuts(storeAttempts)) // the new key's writes fail, the stale mark's work
	if _, err := e.rotate("acme"); err == nil {
		e.t.Fatal("a lost key reported success")
	}
	e.storage.setFailPut(nil)
}

// assertTickRotatesOnce ticks after d and asserts that Cisco rotated acme
// once and that it serves Cisco's current key.
func (e *testEnv) assertTickRotatesOnce(d time.Duration) {
	e.t.Helper()
	before := e.simOrg().Rotations
	e.clock.Advance(d)
	e.tick()
	if got := e.simOrg().Rotations; got != before+1 {
		e.t.Fatalf("Cisco rotations %d→%d, want one recovery", before, got)
	}
	e.assertServesSimKey("acme")
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
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Origin != originRotation {
		t.Fatalf("stored key came from %s", k.Origin)
	}
}

// A manual rotate that joins a recovery whose check finds the stale key
// working still gets a rotation of its own.
func TestRotate_ManualJoiningARecoveryThatRotatesNothingRotates(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	env.failWithoutCisco()
	env.clock.Advance(2 * time.Hour)
	before, sts := env.simOrg().Rotations, env.sim.State().STSCalls
	env.injectFault(ciscosim.Fault{Kind: "sts_delay", DelayMS: 300})
	ticked := make(chan struct{})
	go func() { defer close(ticked); env.tick() }()
	for env.sim.State().STSCalls == sts { // the recovery is checking the key
		time.Sleep(time.Millisecond)
	}
	resp := env.mustRotate("acme")
	<-ticked
	if got := env.simOrg().Rotations; got != before+1 {
		t.Fatalf("Cisco rotations %d→%d: the manual rotate was answered without one", before, got)
	}
	if resp.Data["access_key_id"] != env.simOrg().CurrentKeyID {
		t.Fatalf("the manual rotate answered %v", resp.Data["access_key_id"])
	}
	env.assertServesSimKey("acme")
}

// A crash between the WAL entry and the Cisco call leaves a stale mark
// that the next tick, under a minute later, recovers. The key works: the
// recovery waits until a check can prove it, then lifts the mark, and
// Cisco rotates nothing.
func TestRecovery_YoungMarkOnAWorkingKeyWaitsForAProvingCheck(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	k := env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt.IsZero() })
	if _, err := framework.PutWAL(t0ctx, env.storage, walKindRotate, &rotationWAL{Name: "acme", Version: k.Version,
		PrevAccessKeyID: k.AccessKeyID, Started: env.clock.Now()}); err != nil {
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
	if stored.Stale || stored.StaleCleared == "" {
		t.Fatalf("a minute after the mark: stale=%v stale_cleared=%q", stored.Stale, stored.StaleCleared)
	}
	restarted.assertServesSimKey("acme")
}

// acceptingSTS is an STS that accepts every key, as AWS does for a while
// with a key that Cisco has just replaced.
func acceptingSTS(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/logs</Arn>`+
			`<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
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

// A lifted mark is checked again later: a Cisco call that timed out may
// still replace the key, and then the key is marked stale and recovered.
func TestRecovery_LiftedKeyThatAWSLaterRejectsIsRecovered(t *testing.T) {
	env := newLiftedEnv(t)
	if _, ok := env.sim.RefreshKey(testOrgID); !ok { // the late call lands
		t.Fatal("the simulator refused the refresh")
	}
	k := env.awaitRemark(liftRechecks[0])
	if !strings.Contains(k.LastError, "Cisco replaced it after all") || k.CheckResult != stscheck.Invalid {
		t.Fatalf("re-marked key: error %q, check %s", k.LastError, k.CheckResult)
	}
	before := env.simOrg().Rotations
	env.tick()
	if got := env.simOrg().Rotations; got != before+1 {
		t.Fatalf("Cisco rotations %d→%d: the rejected key was not recovered", before, got)
	}
	env.assertServesSimKey("acme")
}

// A probe follows the config: key_check turned off stops it.
func TestProbe_StopsWhenKeyCheckIsTurnedOff(t *testing.T) {
	env := newTestEnv(t)
	env.b.probes.firstWait, env.b.probes.window = 5*time.Millisecond, 10*time.Second
	env.configure("acme", nil)
	env.injectFault(ciscosim.Fault{Kind: "sts_5xx", Count: 1000})
	env.mustRotate("acme")
	for env.sim.State().STSCalls < 2 {
		time.Sleep(time.Millisecond)
	}
	env.configure("acme", map[string]interface{}{"key_check": false})
	calls := env.sim.State().STSCalls
	time.Sleep(500 * time.Millisecond)
	if n := env.sim.State().STSCalls - calls; n > 1 {
		t.Fatalf("%d STS calls after key_check=false", n)
	}
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
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale || !k.Replaced {
		t.Fatalf("the import lifted the mark of a key Cisco replaced: stale=%v replaced=%v", k.Stale, k.Replaced)
	}
	env.assertTickRotatesOnce(2 * time.Hour)
}

// liftWorkingStaleKey marks acme's working key stale and lets a recovery
// lift the mark.
func (e *testEnv) liftWorkingStaleKey() {
	e.t.Helper()
	e.failWithoutCisco()
	e.clock.Advance(2 * time.Hour)
	e.tick()
	if k, _ := getKey(t0ctx, e.storage, "acme"); k.Stale || k.StaleClearedAt.IsZero() {
		e.t.Fatalf("the working key was not lifted: %v", k)
	}
}

// newLiftedEnv is a test env whose organization acme, rotated every 30
// days, serves a working key whose stale mark a recovery lifted.
func newLiftedEnv(t *testing.T) *testEnv {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	env.liftWorkingStaleKey()
	return env
}

// awaitRemark lets d pass, ticks, and waits for the re-check that tick
// starts to mark acme's key stale again.
func (e *testEnv) awaitRemark(d time.Duration) *keyState {
	e.t.Helper()
	e.clock.Advance(d)
	e.tick()
	k := e.waitKey("acme", func(k *keyState) bool { return k.Stale })
	if !strings.Contains(k.LastError, "Cisco replaced it after all") || k.CheckResult != stscheck.Invalid {
		e.t.Fatalf("re-marked key: error %q, check %s", k.LastError, k.CheckResult)
	}
	return k
}

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
	if k, _ := getKey(t0ctx, e.storage, "acme"); k.Stale || k.AccessKeyID != e.simOrg().CurrentKeyID {
		e.t.Fatalf("the tick did not recover the re-marked key: %v", k)
	}
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
	k := env.waitKey("acme", func(k *keyState) bool { return k.LiftRechecksDone > 0 })
	if k.LiftRechecksDone != len(liftRechecks) || checks() != before+1 {
		t.Fatalf("after the window: %d re-checks recorded, %d STS calls; want %d and 1", k.LiftRechecksDone, checks()-before, len(liftRechecks))
	}
	env.clock.Advance(time.Hour)
	env.tick()
	env.waitProbesIdle()
	if checks() != before+1 {
		t.Fatalf("a re-check ran after the window: %d STS calls", checks()-before)
	}
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
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale || k.StaleCleared == "" {
		t.Fatalf("the import did not lift the mark: stale=%v stale_cleared=%q", k.Stale, k.StaleCleared)
	}
	env.sim.RefreshKey(testOrgID)
	env.awaitRemark(liftRechecks[0])
}

// A re-mark that storage refuses leaves a WAL entry, so that a restart
// does not serve the rejected key as current.
func TestRecovery_RemarkThatStorageRefusesSurvivesARestart(t *testing.T) {
	env := newLiftedEnv(t)
	env.storage.setFailPut(failKeyPuts(-1))
	env.sim.RefreshKey(testOrgID)
	env.clock.Advance(liftRechecks[0])
	env.tick()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(env.logs.String(), "could not store the stale mark of a rejected key") {
		if time.Now().After(deadline) {
			t.Fatal("the re-mark was never tried")
		}
		time.Sleep(10 * time.Millisecond)
	}
	env.storage.setFailPut(nil)
	restarted := env.sibling()
	if err := restarted.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	restarted.tick()
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale && k.AccessKeyID != env.simOrg().CurrentKeyID {
		t.Fatalf("after a restart the rejected key %s is served as current", k.AccessKeyID)
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
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale || k.StaleClearedAt.IsZero() || k.ConsecutiveFailures == 0 {
		t.Fatalf("want a lifted key whose rotation failed: %v, failures %d", k, k.ConsecutiveFailures)
	}
	env.sim.RefreshKey(testOrgID) // the timed-out call lands
	env.awaitRemark(liftRechecks[0])
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
			env.awaitRemark(liftRechecks[0])
		})
	}
}

// A re-check that falls while key_check is off runs once it is on again.
func TestRecovery_RechecksSurviveKeyCheckTurnedOffAndOn(t *testing.T) {
	env := newLiftedEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d", "key_check": false})
	env.sim.RefreshKey(testOrgID)
	env.clock.Advance(liftRechecks[0])
	env.tick()
	env.waitProbesIdle()
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale {
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
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale || k.LiftRechecksDone != 0 {
		t.Fatalf("after a re-check without an answer: stale=%v, re-checks done %d; want not stale, 0", k.Stale, k.LiftRechecksDone)
	}
	env.awaitRemark(time.Minute)
}

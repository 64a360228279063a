package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// restartAfterLostReply rotates acme once, crashes after Cisco's second
// rotation and before its reply was stored, and boots a new backend on the
// storage with opts. It returns the first env, the restarted one, and what
// Cisco served before the lost reply.
func restartAfterLostReply(t *testing.T, opts ...envOption) (env, restarted *testEnv, served ciscosim.OrgState) {
	t.Helper()
	env = newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	served = env.simOrg()
	env.crashAfterCiscoRotated("acme", 1)
	env.b.Cleanup(t.Context())

	restarted = newTestEnv(t, append([]envOption{withStorage(env.storage), withClock(env.clock)}, opts...)...)
	restarted.sim = env.sim // the config points at the first env's Cisco
	return env, restarted, served
}

func TestScheduler_WALCrashRecoveryAcrossRestart(t *testing.T) {
	env, restarted, served := restartAfterLostReply(t)
	creds := restarted.mustRead("creds/acme")
	if creds.Data["key_state"] != "stale" || creds.Data["access_key_id"] != served.CurrentKeyID {
		t.Fatalf("after restart: %v %v", creds.Data["key_state"], creds.Data["access_key_id"])
	}
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("orphaned WAL entries left: %v", ids)
	}
	restarted.tick() // due at once
	creds = restarted.mustRead("creds/acme")
	if creds.Data["key_state"] != "current" || creds.Data["access_key_id"] != env.simOrg().CurrentKeyID || creds.Data["version"] != 2 {
		t.Fatalf("after recovery: %v", creds.Data)
	}
}

// A read that comes before the mount loads still waits for the WAL: the
// key of a rotation that a crash cut short is shown stale, never current.
func TestWAL_SettledBeforeAReadOnAnUnloadedMount(t *testing.T) {
	_, restarted, served := restartAfterLostReply(t, withoutInitialize())
	creds := restarted.mustRead("creds/acme")
	if creds.Data["key_state"] != "stale" || creds.Data["access_key_id"] != served.CurrentKeyID {
		t.Fatalf("before the load: %v %v", creds.Data["key_state"], creds.Data["access_key_id"])
	}
	if restarted.b.loaded.Load() {
		t.Fatal("a creds read loaded the whole mount")
	}
}

// An instance that settled the WAL while it could not write (a
// performance standby) settles it at its first tick once it can: the key of
// a rotation that a crash cut short is never served as current.
func TestWAL_SettledOnceAStandbyInstanceMayWrite(t *testing.T) {
	env, restarted, _ := restartAfterLostReply(t, withoutInitialize())
	restarted.system.ReplicationStateVal = consts.ReplicationPerformanceStandby
	restarted.mustRead("creds/acme")
	restarted.system.ReplicationStateVal = 0
	restarted.tick()
	creds := restarted.mustRead("creds/acme")
	if cur := env.simOrg().CurrentKeyID; creds.Data["key_state"] == "current" && creds.Data["access_key_id"] != cur {
		t.Fatalf("serves %v as current; Cisco's current key is %v", creds.Data["access_key_id"], cur)
	}
}

func TestScheduler_WALOfFinishedRotationIsDropped(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	// The rotation to version 1 stored its key but could not delete its WAL.
	if _, err := framework.PutWAL(t.Context(), env.storage, walKindRotate, &rotationWAL{Name: "acme", Version: 0}); err != nil {
		t.Fatal(err)
	}
	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	creds := restarted.mustRead("creds/acme")
	if creds.Data["key_state"] != "current" {
		t.Fatal("a finished rotation's WAL marked the key stale")
	}
}

// WAL recovery leaves alone the entry of a rotation of the same name that
// is still running, and settles it once nothing runs.
func TestWAL_RecoveryKeepsTheEntryOfARunningRotation(t *testing.T) {
	env := newTestEnv(t)
	// Without the key check: it would find that this made-up rotation
	// left the key working, and lift the stale mark instead of rotating.
	env.configure("acme", map[string]interface{}{"key_check": false})
	env.mustRotate("acme")
	if _, err := framework.PutWAL(t.Context(), env.storage, walKindRotate, &rotationWAL{Name: "acme", Version: 1, Started: env.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	running := &rotationCall{done: make(chan struct{})}
	env.b.inflightMu.Lock()
	env.b.inflight["acme"] = running
	env.b.inflightMu.Unlock()
	env.b.walPending.Store(true)
	env.tick()
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 1 {
		t.Fatalf("recovery deleted the WAL of a running rotation: %d entries left", len(ids))
	}
	// Once nothing runs, the next tick settles it: the outcome is unknown,
	// so the key is marked stale and recovered in the same tick.
	env.b.inflightMu.Lock()
	delete(env.b.inflight, "acme")
	env.b.inflightMu.Unlock()
	env.tick()
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("WAL not settled: %v", ids)
	}
	if !hasEvent(env, bucketkey.NoticeRotate, "trigger", triggerRecovery) {
		t.Fatal("the unsettled rotation was not recovered")
	}
	env.assertServesSimKey("acme")
}

// A definite failure that was stored settles its WAL entry even when the
// entry's delete failed: the tick drops the entry without marking the
// served key stale or rotating.
func TestWAL_SettledFailureIsNotMarkedStale(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.injectFault(ciscosim.Fault{Kind: "error200"})
	env.storage.setFailDelete(func(key string) bool { return strings.HasPrefix(key, "wal/") })
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("error200 reported success")
	}
	env.storage.setFailDelete(nil)
	rotations := env.simOrg().Rotations
	env.tick() // settles the WAL left behind
	if got := env.simOrg().Rotations - rotations; got != 0 {
		t.Fatalf("settling a stored definite failure rotated %d times", got)
	}
	if hasEvent(env, bucketkey.NoticeRotate, "trigger", triggerRecovery) {
		t.Fatal("a settled definite failure was treated as unknown")
	}
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("WAL entries left: %v", ids)
	}
}

// Only what storage holds settles a WAL entry, not a failure that only the
// cache holds: a lost key whose stale mark storage refused keeps its entry
// through the next tick, and a restart serves the key as stale.
func TestWAL_SettledOnlyByStorage(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.storage.setFailPut(failKeyPuts(2 * storeAttempts)) // the new key and the stale mark
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("a lost key reported success")
	}
	env.storage.setFailPut(nil)
	env.tick() // settles the WAL entry left behind; the retry is not due yet
	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	if got := restarted.mustRead("config/acme").Data["key_state"]; got != "stale" {
		t.Fatalf("after a restart, the dead key is served as %v", got)
	}
}

// A restart finds the WAL entry of a rotation that Cisco finished (the reply
// died with the process), and storage refuses the stale mark. The load goes
// on, the cache takes the mark so that creds never serves the dead key as
// current, and the entry stays so that a later restart knows too.
func TestWAL_StaleMarkRefusedAtLoadStillShows(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	served := env.simOrg()
	env.crashAfterCiscoRotated("acme", 1)
	if env.simOrg().CurrentKeyID == served.CurrentKeyID {
		t.Fatal("Cisco did not rotate")
	}
	// Storage refuses key writes at the restart (and keeps refusing).
	env.storage.setFailPut(failKeyPuts(-1))
	env2 := env.sibling()
	if err := env2.boot(env.storage); err != nil {
		t.Fatalf("a refused stale mark stopped the load: %v", err)
	}
	env2.b.storeRetryWait = 0
	for i := 0; i < 3; i++ {
		_, tickErr := env2.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: env.storage})
		t.Logf("tick %d: %v", i, tickErr)
		creds := env2.mustRead("creds/acme")
		if creds.Data["access_key_id"] == served.CurrentKeyID && creds.Data["key_state"] != "stale" {
			t.Fatalf("tick %d: creds serves %v, Cisco replaced it with %s, key_state=%v (not stale)",
				i, creds.Data["access_key_id"], env.simOrg().CurrentKeyID, creds.Data["key_state"])
		}
	}
	// The WAL entry stayed, so a restart with healthy storage knows too.
	env.storage.setFailPut(nil)
	env3 := env.sibling()
	if err := env3.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	if creds := env3.mustRead("creds/acme"); creds.Data["access_key_id"] == served.CurrentKeyID && creds.Data["key_state"] != "stale" {
		t.Fatalf("after a restart, the dead key is served as %v", creds.Data["key_state"])
	}
}

// An undecodable WAL entry does not stop the mount: the load goes on, so
// ticks run and config writes work.
func TestWAL_CorruptEntryDoesNotStopTheMount(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	if err := env.storage.Put(t.Context(), &logical.StorageEntry{Key: framework.WALPrefix + "bad", Value: []byte("{corrupt")}); err != nil {
		t.Fatal(err)
	}
	env2 := env.sibling()
	_ = env2.boot(env.storage)
	if _, err := env2.write("config/acme", map[string]interface{}{"rotation_period": "30d"}); err != nil {
		t.Fatalf("a config write fails because of one corrupt WAL entry: %v", err)
	}
}

// An unfinished rotation found when the mount loads sends a rotate-fail
// event, as every failure the operator must hear of does.
func TestWAL_UnfinishedRotationSendsAnEvent(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.crashAfterCiscoRotated("acme", 1)
	env.b.Cleanup(t.Context())
	restarted := env.sibling()
	if err := restarted.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	if st := restarted.mustRead("creds/acme").Data["key_state"]; st != "stale" {
		t.Fatalf("key_state %v after the restart, want stale", st)
	}
	if !hasEvent(restarted, bucketkey.NoticeRotateFail, "error", "did not finish") || !hasEvent(restarted, bucketkey.NoticeRotateFail, "trigger", triggerRecovery) {
		t.Fatalf("no rotate-fail event for the unfinished rotation: %v", restarted.events.Events)
	}
}

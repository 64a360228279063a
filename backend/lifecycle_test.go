package backend

// One test per finding of the rotation-lifecycle review: each injects the
// failure it names and fails without its fix.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// Finding 1: the tick decided from a snapshot that the key was due; a
// manual rotation landed before the tick's rotation took the lock.
func TestLifecycle_ScheduledRotationRechecksUnderTheLock(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
	env.mustRotate("acme")
	env.clock.Advance(time.Minute) // due
	env.mustRotate("acme")         // the manual rotation lands first
	before := env.simOrg().Rotations
	_, err := env.b.rotate(context.Background(), env.storage, "acme", triggerScheduled)
	if got := env.simOrg().Rotations - before; got != 0 {
		t.Fatalf("the scheduled rotation rotated a fresh key again: %d rotations", got)
	}
	if !errors.Is(err, errNotDue) {
		t.Fatalf("err = %v, want errNotDue", err)
	}
	env.assertServesSimKey("acme")
}

// Finding 2: periodic WAL recovery ran while a rotation of the same name was
// in flight and deleted the entry.
func TestLifecycle_RecoveryKeepsTheWALOfARunningRotation(t *testing.T) {
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
	if !hasEvent(env, eventRotate, "trigger", triggerRecovery) {
		t.Fatal("the unsettled rotation was not recovered")
	}
	env.assertServesSimKey("acme")
}

// Finding 3: retries of a definite failure ran past the schedule's window.
func TestLifecycle_RetriesStayInsideTheWindow(t *testing.T) {
	monday3 := time.Date(2026, 1, 12, 3, 0, 0, 0, time.UTC)
	sched, err := parseRotationSchedule("0 3 * * 1", monday3)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &orgConfig{RotationSchedule: "0 3 * * 1", RotationWindow: time.Hour, parsed: sched}
	k := &keyState{AccessKeyID: "AKIAEXAMPLE000000001", KeyCreationDate: monday3.AddDate(0, 0, -7), LastVaultRotation: monday3.AddDate(0, 0, -7)}
	cases := map[string]struct {
		retry time.Time
		stale bool
		want  time.Time
	}{
		"inside the window":              {monday3.Add(31 * time.Minute), false, monday3.Add(31 * time.Minute)},
		"after the window: next run":     {monday3.Add(65 * time.Minute), false, monday3.AddDate(0, 0, 7)},
		"stale keys recover at once":     {monday3.Add(65 * time.Minute), true, monday3.Add(65 * time.Minute)},
		"never past the 89-day limit":    {k.issuedAt().Add(maxRotationGap - time.Hour), false, k.issuedAt().Add(maxRotationGap)},
		"a retry at the limit stays put": {k.issuedAt().Add(maxRotationGap + time.Hour), false, k.issuedAt().Add(maxRotationGap + time.Hour)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kk := *k
			kk.RetryAt, kk.Stale = tc.retry, tc.stale
			if name == "never past the 89-day limit" || name == "a retry at the limit stays put" {
				// Only the limit matters here: a schedule whose next run is far.
				kk.KeyCreationDate = monday3.AddDate(0, 0, -88)
				kk.LastVaultRotation = kk.KeyCreationDate
				kk.RetryAt = kk.issuedAt().Add(tc.retry.Sub(k.issuedAt()))
				tc.want = kk.issuedAt().Add(tc.want.Sub(k.issuedAt()))
			}
			got, ok := nextRotation(cfg, &kk, monday3)
			if !ok || !got.Equal(tc.want) {
				t.Fatalf("next = %v, want %v", got, tc.want)
			}
		})
	}
}

// Finding 4: a stale key with automated rotation off was never recovered.
func TestLifecycle_StaleKeyRecoveredWithAutomationOff(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"disable_automated_rotation": true})
	env.mustRotate("acme")
	env.injectFault(ciscosim.Fault{Kind: "drop"})
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("a dropped reply reported success")
	}
	creds := env.mustRead("creds/acme")
	if creds.Data["key_state"] != "stale" || creds.Data["next_vault_rotation"] == nil {
		t.Fatalf("stale key without a recovery: %v %v", creds.Data["key_state"], creds.Data["next_vault_rotation"])
	}
	if len(creds.Warnings) == 0 || !strings.Contains(creds.Warnings[0], "rotates again at") {
		t.Fatalf("the warning does not say when the recovery runs: %v", creds.Warnings)
	}
	env.clock.Advance(2 * time.Minute)
	env.tick()
	if got := env.assertServesSimKey("acme").Data["key_state"]; got != "current" {
		t.Fatalf("after recovery key_state = %v", got)
	}
}

// Finding 5: one entry that did not decode stopped every write, the tick
// and the delete that would remove it.
func TestLifecycle_UnreadableEntryIsSkippedAndDeletable(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.configure("broken", nil)
	env.mustRotate("broken")
	if _, err := framework.PutWAL(t.Context(), env.storage, walKindRotate, &rotationWAL{Name: "broken", Version: 1, Started: env.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	const leaked = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYUNREADABLE"
	corrupt := []byte(`{"secret_access_key":"` + leaked + `","version":"one"}`)
	if err := env.storage.Put(t.Context(), &logical.StorageEntry{Key: keyPrefix + "broken", Value: corrupt}); err != nil {
		t.Fatal(err)
	}

	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	restarted.mustRotate("acme")
	restarted.tick()
	_, err := restarted.read("creds/broken")
	if err == nil || !strings.Contains(err.Error(), "delete config/broken") {
		t.Fatalf("reading the unreadable organization: %v", err)
	}
	list := restarted.mustRequest(logical.ListOperation, "config/", nil)
	info, _ := list.Data["key_info"].(map[string]interface{})
	if _, ok := info["broken"]; !ok {
		t.Fatalf("the list does not flag the unreadable entry: %v", list.Data)
	}
	if logs := restarted.logs.String(); !strings.Contains(logs, `"name":"broken"`) || strings.Contains(logs, leaked) {
		t.Fatalf("the skipped entry is not logged by name, or its secret is: %s", logs)
	}
	if strings.Contains(err.Error(), leaked) {
		t.Fatal("the error quotes the stored secret")
	}

	restarted.mustRequest(logical.DeleteOperation, "config/broken", nil)
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("the unreadable organization's WAL outlived its delete: %v", ids)
	}
	if list := restarted.mustRequest(logical.ListOperation, "config/", nil); list.Data["key_info"] != nil {
		t.Fatalf("the deleted entry is still flagged: %v", list.Data)
	}
	restarted.configure("broken", nil)
	restarted.mustRotate("broken")
	restarted.assertServesSimKey("broken")
}

// Finding 6: scheduled attempts that end before Cisco is called left no
// record and no log line.
func TestLifecycle_FailuresBeforeTheCallAreRecorded(t *testing.T) {
	cases := map[string]func(env *testEnv) (cleanup func()){
		"WAL write fails": func(env *testEnv) func() {
			env.storage.setFailPut(func(key string) bool { return strings.HasPrefix(key, "wal/") })
			return func() { env.storage.setFailPut(nil) }
		},
		"API key busy": func(env *testEnv) func() {
			env.b.limiter = cisco.NewLimiter(cisco.WithTurnTimeout(50 * time.Millisecond))
			release, err := env.b.limiter.Acquire(context.Background(), mustConfig(env, "acme").apiKey())
			if err != nil {
				env.t.Fatal(err)
			}
			return release
		},
		"node turned read-only": func(env *testEnv) func() {
			// The tick started on the active node; the node stepped down.
			env.system.ReplicationStateVal = consts.ReplicationPerformanceStandby
			return func() { env.system.ReplicationStateVal = 0 }
		},
	}
	for name, inject := range cases {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
			env.mustRotate("acme")
			env.clock.Advance(time.Minute)
			calls := env.sim.State().RotateCalls
			cleanup := inject(env)
			_, _ = env.b.rotate(context.Background(), env.storage, "acme", triggerScheduled)
			cleanup()
			if env.sim.State().RotateCalls != calls {
				t.Fatal("Cisco was called")
			}
			cfg := env.mustRead("config/acme")
			if cfg.Data["consecutive_failures"] != 1 || cfg.Data["last_rotation_error"] == "" {
				t.Fatalf("failure not recorded: %v", cfg.Data)
			}
			if !strings.Contains(env.logs.String(), `"@message":"rotation failed"`) {
				t.Fatal("failure not logged")
			}
		})
	}
}

func mustConfig(env *testEnv, name string) *orgConfig {
	e, _ := env.b.cached(name)
	if e == nil {
		env.t.Fatalf("%s is not cached", name)
	}
	return e.config
}

// Finding 7: a rotation started just before the tick's budget ran out kept
// Vault's periodic call (and its state lock) for a whole Cisco call more.
func TestLifecycle_TickStaysWithinItsBudget(t *testing.T) {
	orgs := []string{"1000001", "1000002", "1000003", "1000004", "1000005"}
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys:      []ciscosim.APIKey{{ClientID: "msp", ClientSecret: testClientSecret, OrgIDs: orgs}},
		NoRateLimits: true,
	}))
	env.b.limiter = cisco.NewLimiter(cisco.WithLimits())
	env.b.callTimeout = time.Second
	env.b.sched.budget = 1500 * time.Millisecond
	for _, org := range orgs {
		env.configure("org-"+org, map[string]interface{}{"client_id": "msp", "org_id": org, "rotation_period": "1m"})
		env.mustRotate("org-" + org)
	}
	env.clock.Advance(time.Minute)
	env.injectFault(ciscosim.Fault{Kind: "delay", DelayMS: 400, Count: len(orgs)})
	// What did not start is still due and starts on a later tick.
	for i := 0; i < len(orgs); i++ {
		began := time.Now()
		env.tick()
		if took := time.Since(began); took > env.b.sched.budget {
			t.Fatalf("tick %d took %v, over its %v budget", i+1, took, env.b.sched.budget)
		}
	}
	for _, org := range orgs {
		if got := env.sim.State().Orgs[org].Rotations; got != 2 {
			t.Fatalf("org %s rotated %d times, want 2", org, got)
		}
	}
}

// Finding 8: a credential fix waited out the backoff; the last day before
// the lockout was spent in hour-long waits.
func TestLifecycle_CredentialFixRetriesAtOnce(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
	env.mustRotate("acme")
	env.mustWrite("config/acme", map[string]interface{}{"client_secret": "wrong-secret-value", "verify_connection": false})
	env.clock.Advance(time.Minute)
	for i := 0; i < 6; i++ {
		env.tick()
		next, _ := time.Parse(time.RFC3339, env.mustRead("config/acme").Data["next_vault_rotation"].(string))
		env.clock.Advance(next.Sub(env.clock.Now()))
	}
	env.tick()
	next, _ := time.Parse(time.RFC3339, env.mustRead("config/acme").Data["next_vault_rotation"].(string))
	if next.Sub(env.clock.Now()) < 30*time.Minute {
		t.Fatalf("the backoff after 7 failures is only %v", next.Sub(env.clock.Now()))
	}
	env.mustWrite("config/acme", map[string]interface{}{"client_secret": testClientSecret})
	if got := env.mustRead("config/acme").Data["next_vault_rotation"]; got != env.clock.Now().Format(time.RFC3339) {
		t.Fatalf("after the fix next_vault_rotation = %v, want now", got)
	}
	env.tick()
	env.assertServesSimKey("acme")
	if got := env.mustRead("config/acme").Data["consecutive_failures"]; got != 0 {
		t.Fatalf("consecutive_failures = %v after the fix", got)
	}
}

func TestLifecycle_LastDayBackoffIsShort(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &keyState{AccessKeyID: "AKIAEXAMPLE000000001", KeyCreationDate: created, LastVaultRotation: created, ConsecutiveFailures: 10}
	now := created.Add(keyLifetime - 20*time.Hour)
	k.markFailed("Cisco: Internal error", now, false, true)
	if wait := k.RetryAt.Sub(now); wait > lastDayBackoff {
		t.Fatalf("a retry 20 h before the lockout waits %v", wait)
	}
}

// Finding 10: the lost-key state lived only in the active node's memory.
func TestLifecycle_LostKeyStateIsStored(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.storage.setFailPut(failKeyPuts(storeAttempts)) // the new key's writes fail, the next works
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("a lost key reported success")
	}
	env.storage.setFailPut(nil)
	stored, err := getKey(t.Context(), env.storage, "acme")
	if err != nil || stored == nil || !stored.Stale || stored.LastError == "" {
		t.Fatalf("stored key after a lost key: %v %v", stored, err)
	}
}

// Finding 11: a deleted organization's WAL entries outlived it and marked a
// re-created one stale.
func TestLifecycle_DeleteRemovesTheWAL(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	if _, err := framework.PutWAL(t.Context(), env.storage, walKindRotate, &rotationWAL{Name: "acme", Version: 1, Started: env.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	env.mustRequest("delete", "config/acme", nil)
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("WAL entries survived the delete: %v", ids)
	}
	env.configure("acme", nil)
	env.mustRotate("acme")
	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	if got := restarted.mustRead("creds/acme").Data["key_state"]; got != "current" {
		t.Fatalf("re-created organization: key_state = %v", got)
	}
}

// Finding 12: a definite failure was stored but its WAL delete failed;
// recovery then marked the served key stale and rotated once more.
func TestLifecycle_SettledFailureIsNotMarkedStale(t *testing.T) {
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
	if hasEvent(env, eventRotate, "trigger", triggerRecovery) {
		t.Fatal("a settled definite failure was treated as unknown")
	}
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("WAL entries left: %v", ids)
	}
}

// Found by the sequence test: the WAL was settled by a failure that only
// the cache held. A lost key whose stale mark storage refused had its WAL
// entry deleted by the next tick, and a restart then served the dead key as
// current.
func TestLifecycle_WALSettledOnlyByStorage(t *testing.T) {
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

// Finding 13: Cisco's keyCreationDate far in the past for a key the plugin
// just rotated made it due again at once.
func TestLifecycle_BogusCreationDateDoesNotMakeTheKeyDue(t *testing.T) {
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

package backend

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

func TestScheduler_DueKeyRotatesAndUndueKeyDoesNot(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "7d"})
	env.mustRotate("acme")
	calls := env.sim.State().RotateCalls

	env.clock.Advance(7*24*time.Hour - time.Minute)
	env.tick()
	if got := env.sim.State().RotateCalls; got != calls {
		t.Fatalf("a key not yet due caused %d Cisco calls", got-calls)
	}
	rotations := env.simOrg().Rotations
	env.clock.Advance(time.Minute)
	env.tick()
	if got := env.simOrg().Rotations; got != rotations+1 {
		t.Fatalf("due key: %d rotations, want 1", got-rotations)
	}
	creds := env.assertServesSimKey("acme")
	if creds.Data["version"] != 2 || creds.Data["ttl"] != int64(credsRereadInterval/time.Second) {
		t.Fatalf("after scheduled rotation: version %v ttl %v", creds.Data["version"], creds.Data["ttl"])
	}
}

func TestScheduler_ScheduleAndWindow(t *testing.T) {
	env := newTestEnv(t) // clock: Saturday 2026-01-10 12:00 UTC
	env.configure("acme", map[string]interface{}{"rotation_schedule": "0 3 * * 1", "rotation_window": "2h"})
	env.mustRotate("acme")
	cfg := env.mustRead("config/acme")
	if cfg.Data["next_vault_rotation"] != "2026-01-12T03:00:00Z" {
		t.Fatalf("next_vault_rotation = %v, want Monday 03:00", cfg.Data["next_vault_rotation"])
	}
	rotations := env.simOrg().Rotations

	// Vault was down through Monday's window: 05:30 is past 03:00 + 2h.
	env.clock.Advance(41*time.Hour + 30*time.Minute) // 2026-01-12 05:30
	env.tick()
	if env.simOrg().Rotations != rotations {
		t.Fatal("rotated outside the window")
	}
	cfg = env.mustRead("config/acme")
	if cfg.Data["next_vault_rotation"] != "2026-01-19T03:00:00Z" {
		t.Fatalf("after a missed window next = %v, want the next Monday", cfg.Data["next_vault_rotation"])
	}
	// Inside the next window it rotates.
	env.clock.Advance(7*24*time.Hour - 90*time.Minute) // 2026-01-19 04:00
	env.tick()
	if env.simOrg().Rotations != rotations+1 {
		t.Fatal("did not rotate inside the window")
	}
	env.assertServesSimKey("acme")
}

func TestScheduler_DefiniteFailuresBackOff(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
	env.mustRotate("acme")
	good := env.simOrg()
	env.clock.Advance(time.Minute)

	var waits []time.Duration
	for i := 0; i < 4; i++ {
		env.injectFault(ciscosim.Fault{Kind: "error200"})
		env.tick()
		cfg := env.mustRead("config/acme")
		if cfg.Data["consecutive_failures"] != i+1 || cfg.Data["key_state"] != "current" {
			t.Fatalf("after failure %d: %v", i+1, cfg.Data)
		}
		next, _ := time.Parse(time.RFC3339, cfg.Data["next_vault_rotation"].(string))
		waits = append(waits, next.Sub(env.clock.Now()))
		// Nothing happens before the retry is due.
		calls := env.sim.State().RotateCalls
		env.clock.Advance(next.Sub(env.clock.Now()) - time.Second)
		env.tick()
		if env.sim.State().RotateCalls != calls {
			t.Fatal("retried before the backoff elapsed")
		}
		env.clock.Advance(time.Second)
	}
	for i, w := range waits {
		base := time.Minute << i
		if w < base-time.Second || w > base+base/4 {
			t.Fatalf("backoff %d = %v, want about %v", i+1, w, base)
		}
	}
	env.tick()
	env.assertServesSimKey("acme")
	if env.simOrg().CurrentKeyID == good.CurrentKeyID {
		t.Fatal("no rotation after the failures")
	}
	cfg := env.mustRead("config/acme")
	if cfg.Data["consecutive_failures"] != 0 || cfg.Data["last_rotation_error"] != "" {
		t.Fatalf("status not cleared after success: %v", cfg.Data)
	}
}

func TestScheduler_AmbiguousFailureRecoversEarly(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "60d"})
	env.mustRotate("acme")
	env.injectFault(ciscosim.Fault{Kind: "drop"})
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("a dropped reply reported success")
	}
	creds := env.mustRead("creds/acme")
	if creds.Data["key_state"] != "stale" || len(creds.Warnings) == 0 {
		t.Fatalf("after a lost reply: %v %v", creds.Data["key_state"], creds.Warnings)
	}
	// The period says 60 days; recovery starts within the first backoff.
	env.clock.Advance(time.Minute + 15*time.Second)
	env.tick()
	creds = env.assertServesSimKey("acme")
	if creds.Data["key_state"] != "current" {
		t.Fatalf("after recovery key_state = %v", creds.Data["key_state"])
	}
	if !hasEvent(env, bucketkey.NoticeRotate, "trigger", triggerRecovery) {
		t.Fatal("no recovery event")
	}
}

func TestScheduler_NoRotationOffPrimary(t *testing.T) {
	for _, state := range []consts.ReplicationState{consts.ReplicationPerformanceStandby, consts.ReplicationPerformanceSecondary, consts.ReplicationDRSecondary} {
		t.Run(fmt.Sprint(state), func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
			env.mustRotate("acme")
			calls := env.sim.State().RotateCalls
			env.system.ReplicationStateVal = state
			env.clock.Advance(time.Hour)
			env.tick()
			if env.sim.State().RotateCalls != calls {
				t.Fatal("rotated off the active primary")
			}
			// Reads still work there.
			env.mustRead("creds/acme")
		})
	}
}

func TestScheduler_DisabledAutomatedRotation(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1m", "disable_automated_rotation": true})
	env.mustRotate("acme")
	calls := env.sim.State().RotateCalls
	env.clock.Advance(80 * 24 * time.Hour)
	env.tick()
	if env.sim.State().RotateCalls != calls {
		t.Fatal("rotated with automated rotation disabled")
	}
	creds := env.mustRead("creds/acme")
	if creds.Data["next_vault_rotation"] != nil || len(creds.Warnings) == 0 {
		t.Fatalf("disabled: next %v warnings %v", creds.Data["next_vault_rotation"], creds.Warnings)
	}
	// Turning it back on reschedules at once: the key is overdue.
	env.mustWrite("config/acme", map[string]interface{}{"disable_automated_rotation": false})
	env.tick()
	if env.sim.State().RotateCalls != calls+1 {
		t.Fatal("re-enabling did not reschedule")
	}
}

func TestScheduler_ConfigChangeReschedules(t *testing.T) {
	env := newTestEnv(t)
	// Without scheduled checks, the queue holds the rotation alone.
	env.configure("acme", map[string]interface{}{"rotation_period": "60d", "key_check_interval": 0})
	env.mustRotate("acme")
	at, _ := env.b.sched.queuedAt("acme")
	if want := env.clock.Now().Add(60 * 24 * time.Hour); !at.Equal(want) {
		t.Fatalf("queued at %v, want %v", at, want)
	}
	env.mustWrite("config/acme", map[string]interface{}{"rotation_period": "1d"})
	at, _ = env.b.sched.queuedAt("acme")
	if want := env.clock.Now().Add(24 * time.Hour); !at.Equal(want) {
		t.Fatalf("after the change queued at %v, want %v", at, want)
	}
}

func TestScheduler_DeadlineWarnings(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"disable_automated_rotation": true})
	env.mustRotate("acme")
	env.clock.Advance(76*24*time.Hour + time.Hour) // 14 days minus an hour before the lockout
	resp := env.mustRead("creds/acme")
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "90-day lockout") {
		t.Fatalf("creds warnings: %v", resp.Warnings)
	}
	cfg := env.mustRead("config/acme")
	if len(cfg.Warnings) != 1 {
		t.Fatalf("config warnings: %v", cfg.Warnings)
	}
	countErrors := func() int { return strings.Count(env.logs.String(), "nears Cisco's 90-day lockout") }
	env.tick()
	env.tick()
	if countErrors() != 1 {
		t.Fatalf("logged %d times in one hour, want once", countErrors())
	}
	if !strings.Contains(env.logs.String(), `"@level":"error"`) {
		t.Fatal("the deadline is not logged at ERROR")
	}
	env.clock.Advance(time.Hour)
	env.tick()
	if countErrors() != 2 {
		t.Fatalf("logged %d times after an hour, want 2", countErrors())
	}
	// A successful rotation ends the warnings.
	env.mustRotate("acme")
	if resp := env.mustRead("creds/acme"); len(resp.Warnings) != 0 {
		t.Fatalf("warnings after rotation: %v", resp.Warnings)
	}
}

// TestScheduler_IdleTickDoesNoStorageReads holds for any number of
// organizations: the queue answers from memory.
func TestScheduler_IdleTickDoesNoStorageReads(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	seedOrganizations(t, env.storage, 1000, env.clock.Now())

	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	restarted.tick() // loads once
	gets, lists := restarted.storage.gets.Load(), restarted.storage.lists.Load()
	for i := 0; i < 10; i++ {
		restarted.clock.Advance(time.Minute)
		restarted.tick()
	}
	if g, l := restarted.storage.gets.Load()-gets, restarted.storage.lists.Load()-lists; g != 0 || l != 0 {
		t.Fatalf("10 idle ticks did %d gets and %d lists, want none", g, l)
	}
}

func TestScheduler_LazyLoadFromPeriodic(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
	env.mustRotate("acme")
	env.clock.Advance(time.Minute)

	// A lazily loaded plugin may see the periodic call before Initialize.
	conf := &logical.BackendConfig{System: env.system, StorageView: env.storage}
	b := newBackend(conf)
	b.now = env.clock.Now
	if err := b.Setup(t.Context(), conf); err != nil {
		t.Fatal(err)
	}
	calls := env.sim.State().RotateCalls
	if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: env.storage}); err != nil {
		t.Fatal(err)
	}
	if env.sim.State().RotateCalls != calls+1 {
		t.Fatal("the first periodic call did not load and rotate")
	}
}

// A tick stays within its budget: it holds Vault's periodic call (and its
// state lock), so it starts no rotation that a Cisco call could carry past
// the budget.
func TestScheduler_TickStaysWithinItsBudget(t *testing.T) {
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

// sameLockStripe returns two names that share one of the cache's name
// locks, as unrelated organizations do on a mount with many.
func sameLockStripe() (string, string) {
	stripeOf := func(name string) uint32 {
		h := fnv.New32a()
		h.Write([]byte(name))
		return h.Sum32() % 256
	}
	seen := map[uint32]string{}
	for i := 0; ; i++ {
		name := fmt.Sprintf("org-%d", i)
		if other, ok := seen[stripeOf(name)]; ok {
			return other, name
		}
		seen[stripeOf(name)] = name
	}
}

// The tick's wait for a name's lock ends with the tick's deadline: an
// unrelated organization whose lock stripe is held for long (a config
// write waiting for its API key's turn and Cisco's token endpoint, a
// manual rotation) does not hold the tick past its budget.
func TestScheduler_TickDoesNotWaitOnAnUnrelatedLockPastItsBudget(t *testing.T) {
	busy, due := sameLockStripe()
	env := newTestEnv(t)
	env.b.limiter = cisco.NewLimiter(cisco.WithLimits())
	env.b.callTimeout = time.Second
	env.b.sched.budget = 1500 * time.Millisecond
	env.configureOwnOrg(busy, map[string]interface{}{"key_check_interval": 0})
	env.configureOwnOrg(due, map[string]interface{}{"rotation_period": "1m", "key_check_interval": 0})
	env.mustRotate(due)
	env.clock.Advance(time.Minute)
	held, err := env.b.lockName(context.Background(), env.storage, busy)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(4 * time.Second)
		held.unlock()
		close(released)
	}()
	began := time.Now()
	env.tick()
	if took := time.Since(began); took > env.b.sched.budget {
		t.Fatalf("the tick took %v waiting on %s's lock, over its %v budget", took, busy, env.b.sched.budget)
	}
	<-released
	env.tick() // what did not start is still due
	if k, _ := getKey(t0ctx, env.storage, due); k.Version() != 2 {
		t.Fatalf("%s was not rotated once the lock was free: version %d", due, k.Version())
	}
}

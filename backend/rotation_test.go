package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

func TestScheduler_Events(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
	env.mustRotate("acme")
	env.clock.Advance(time.Minute)
	env.tick()
	env.injectFault(ciscosim.Fault{Kind: "error200"})
	_, _ = env.rotate("acme")

	if !hasEvent(env, bucketkey.NoticeRotate, "trigger", triggerManual) || !hasEvent(env, bucketkey.NoticeRotate, "trigger", triggerScheduled) {
		t.Fatal("missing rotate events")
	}
	if !hasEvent(env, bucketkey.NoticeRotateFail, "error", "Cisco: Internal error") {
		t.Fatal("missing rotate-fail event")
	}
	secret := env.simOrg().SecretAccessKey
	for _, ev := range env.events.Events {
		if ev.Event.Metadata.Fields["name"].GetStringValue() != "acme" || ev.Event.Metadata.Fields["version"] == nil {
			t.Fatalf("event without name or version: %v", ev.Event.Metadata)
		}
		if strings.Contains(ev.Event.Metadata.String(), secret) || strings.Contains(ev.Event.Metadata.String(), testClientSecret) {
			t.Fatal("an event carries a secret")
		}
	}
}

// A scheduled rotation checks under the name's lock that the key is still
// due: the tick decides from a snapshot, and a manual rotation may land
// before the scheduled one takes the lock. It then rotates nothing and
// returns errNotDue.
func TestRotation_ScheduledRotationRechecksUnderTheLock(t *testing.T) {
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

// A scheduled attempt that ends before Cisco is called (the WAL write
// fails, the API key stays busy, the node turns read-only) is recorded as a
// failure and logged.
func TestRotation_FailuresBeforeTheCallAreRecorded(t *testing.T) {
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

// The stale mark of a lost key (Cisco rotated, storing the new key failed)
// is stored, not only kept in the active node's memory.
func TestRotation_LostKeyStateIsStored(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.storage.setFailPut(failKeyPuts(storeAttempts)) // the new key's writes fail, the next works
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("a lost key reported success")
	}
	env.storage.setFailPut(nil)
	stored, err := getKey(t.Context(), env.storage, "acme")
	if err != nil || stored == nil || !stored.Stale() || stored.LastError() == "" {
		t.Fatalf("stored key after a lost key: %v %v", stored, err)
	}
}

// TestScheduler_StaysWithinCiscoLimits: against a simulator that enforces
// Cisco's limits, back-to-back rotations on one API key wait for the limit
// instead of drawing 429s, and a tick never runs two calls of one API key
// at once.
func TestScheduler_StaysWithinCiscoLimits(t *testing.T) {
	orgs := []string{"1000001", "1000002", "1000003", "1000004", "1000005", "1000006"}
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys: []ciscosim.APIKey{{ClientID: "msp", ClientSecret: testClientSecret, OrgIDs: orgs}},
	}))
	for _, org := range orgs {
		env.configure("org-"+org, map[string]interface{}{"client_id": "msp", "org_id": org, "rotation_period": "1m"})
	}
	// Six rotations within a second on one API key: Cisco allows five.
	began := time.Now()
	for _, org := range orgs {
		env.mustRotate("org-" + org)
	}
	if elapsed := time.Since(began); elapsed < 900*time.Millisecond {
		t.Fatalf("six calls on one API key took %v: the 5-per-second limit was not kept", elapsed)
	}
	// All six fall due together; the tick serializes them per API key.
	env.clock.Advance(time.Minute)
	env.tick()
	st := env.sim.State()
	if st.RateLimited != 0 {
		t.Fatalf("the simulator answered %d calls with 429", st.RateLimited)
	}
	if st.MaxConcurrentPerKey != 1 {
		t.Fatalf("%d calls of one API key ran at once", st.MaxConcurrentPerKey)
	}
	for _, org := range orgs {
		if st.Orgs[org].Rotations != 2 {
			t.Fatalf("org %s rotated %d times, want 2", org, st.Orgs[org].Rotations)
		}
	}
}

// faultTally counts invariant violations across the fault matrix.
type faultTally struct {
	mu                          sync.Mutex
	scenarios, lost, doubleRots int
}

func (f *faultTally) add(lost, double bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scenarios++
	if lost {
		f.lost++
	}
	if double {
		f.doubleRots++
	}
}

// checkInvariant: the served key is the last key Cisco issued, or it is
// marked stale and a rotation is scheduled. It also scans the logs.
func checkInvariant(t *testing.T, env *testEnv, tally *faultTally, rotationsBefore, maxRotations int, secrets []string) {
	t.Helper()
	org := env.simOrg()
	lost := false
	creds, err := env.read("creds/acme")
	switch {
	case err != nil || creds == nil || creds.IsError():
		lost = true
		t.Errorf("creds unreadable: %v %v", creds, err)
	case creds.Data["access_key_id"] == org.CurrentKeyID && creds.Data["secret_access_key"] == org.SecretAccessKey:
	case creds.Data["key_state"] == "stale":
		if !env.b.sched.queued("acme") {
			lost = true
			t.Errorf("stale key without a scheduled rotation")
		}
	default:
		lost = true
		t.Errorf("served %v, Cisco's current key is %s, and the key is not marked stale", creds.Data["access_key_id"], org.CurrentKeyID)
	}
	double := org.Rotations-rotationsBefore > maxRotations
	if double {
		t.Errorf("Cisco rotated %d times, want at most %d", org.Rotations-rotationsBefore, maxRotations)
	}
	tally.add(lost, double)
	logs := env.logs.String()
	for _, s := range append(secrets, testClientSecret, org.SecretAccessKey) {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a secret appeared in the logs")
		}
	}
}

// TestFaultMatrix injects every simulator fault and every storage fault,
// under manual and automatic rotation, and checks one invariant after each.
func TestFaultMatrix(t *testing.T) {
	tally := &faultTally{}
	faults := map[string]ciscosim.Fault{
		"5xx":          {Kind: "5xx", Status: 500},
		"503":          {Kind: "5xx", Status: 503},
		"429":          {Kind: "429"},
		"429 x4":       {Kind: "429", Count: 4},
		"error200":     {Kind: "error200"},
		"malformed":    {Kind: "malformed"},
		"empty":        {Kind: "empty"},
		"delay":        {Kind: "delay", DelayMS: 50},
		"timeout":      {Kind: "delay", DelayMS: 1500},
		"drop":         {Kind: "drop"},
		"expire_token": {Kind: "expire_token"},
	}
	storageFaults := map[string]func(string) bool{
		"put fails once":                  failKeyPuts(1),
		"put always fails":                failKeyPuts(-1),
		"put fails after Cisco succeeded": failKeyPuts(storeAttempts),
	}
	for _, mode := range []string{triggerManual, triggerScheduled} {
		for name, fault := range faults {
			t.Run(mode+"/"+name, func(t *testing.T) {
				env := newTestEnv(t)
				env.b.callTimeout = 500 * time.Millisecond
				env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
				env.mustRotate("acme")
				secrets := []string{env.simOrg().SecretAccessKey}
				before := env.simOrg().Rotations
				env.injectFault(fault)
				rotateOnce(env, mode)
				// A call our client gave up on may still be rotating at
				// Cisco; the invariant is about what happens after it lands.
				env.waitSimIdle()
				checkInvariant(t, env, tally, before, 1, secrets)
				// Recovery: the scheduler settles any stale key.
				env.clock.Advance(time.Hour)
				env.tick()
				checkInvariant(t, env, tally, before, 2, secrets)
				if got := env.mustRead("creds/acme").Data["key_state"]; got != "current" {
					t.Errorf("after recovery key_state = %v", got)
				}
			})
		}
		for name, fail := range storageFaults {
			t.Run(mode+"/storage "+name, func(t *testing.T) {
				env := newTestEnv(t)
				env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
				env.mustRotate("acme")
				before := env.simOrg().Rotations
				env.storage.setFailPut(fail)
				rotateOnce(env, mode)
				checkInvariant(t, env, tally, before, 1, nil)
				env.storage.setFailPut(nil)
				env.clock.Advance(time.Hour)
				env.tick()
				checkInvariant(t, env, tally, before, 2, nil)
			})
		}
	}
	t.Run("crash between Cisco's reply and the storage write", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		env.mustRotate("acme")
		before := env.simOrg().Rotations
		// The rotation writes its WAL and calls Cisco; every later write
		// fails, as if the process died before storing the key.
		env.storage.setFailPut(failKeyPuts(-1))
		_, _ = env.rotate("acme")
		env.b.Cleanup(t.Context())
		env.storage.setFailPut(nil)
		// Drop what the dead process had in memory: only storage remains.
		restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
		restarted.sim = env.sim
		checkInvariant(t, restarted, tally, before, 1, nil)
		restarted.tick()
		checkInvariant(t, restarted, tally, before, 2, nil)
	})
	t.Logf("fault matrix: %d checks, %d lost keys, %d unintended double rotations", tally.scenarios, tally.lost, tally.doubleRots)
	fmt.Printf("fault matrix: %d checks, %d lost keys, %d unintended double rotations\n", tally.scenarios, tally.lost, tally.doubleRots)
	if tally.lost != 0 || tally.doubleRots != 0 {
		t.Fatalf("%d lost keys, %d double rotations", tally.lost, tally.doubleRots)
	}
}

// rotateOnce rotates by request, or by letting the key fall due.
func rotateOnce(env *testEnv, mode string) {
	if mode == triggerManual {
		_, _ = env.rotate("acme")
		return
	}
	env.clock.Advance(time.Minute)
	env.tick()
}

// TestConcurrentRotatesAndReads: 100 concurrent rotates with 1,000
// concurrent reads. A read never pairs one version's id with another's secret.
func TestConcurrentRotatesAndReads(t *testing.T) {
	env := newTestEnv(t)
	env.b.limiter = cisco.NewLimiter(cisco.WithLimits())
	env.configure("acme", nil)
	env.mustRotate("acme")

	var mu sync.Mutex
	issued := map[string]string{}
	first := env.simOrg()
	issued[first.CurrentKeyID] = first.SecretAccessKey
	var wg sync.WaitGroup
	errs := make(chan error, 1100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.rotate("acme")
			if err != nil || resp.IsError() {
				errs <- fmt.Errorf("rotate: %v %v", resp, err)
				return
			}
			org := env.simOrg()
			mu.Lock()
			issued[org.CurrentKeyID] = org.SecretAccessKey
			mu.Unlock()
		}()
	}
	type pair struct{ id, secret string }
	reads := make(chan pair, 1000)
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.read("creds/acme")
			if err != nil || resp.IsError() {
				errs <- fmt.Errorf("read: %v %v", resp, err)
				return
			}
			reads <- pair{resp.Data["access_key_id"].(string), resp.Data["secret_access_key"].(string)}
		}()
	}
	wg.Wait()
	close(errs)
	close(reads)
	for err := range errs {
		t.Fatal(err)
	}
	torn := 0
	for p := range reads {
		if want, ok := issued[p.id]; ok && want != p.secret {
			torn++
		}
	}
	if torn != 0 {
		t.Fatalf("%d torn reads", torn)
	}
	env.assertServesSimKey("acme")
	t.Logf("100 rotates made %d Cisco rotations; 1000 reads, 0 torn", env.simOrg().Rotations-1)
}

// A scheduled rotation decides from storage, not only from its cache: a
// second instance on the same storage (a plugin reload) that stored a new
// key is not rotated over, and its key is served.
func TestRotation_ScheduledRotationSeesAKeyAnotherInstanceStored(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1h", "key_check_interval": 0})
	env.mustRotate("acme")
	first := env.b
	env.clock.Advance(59 * time.Minute)
	second := env.sibling()
	if err := second.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	second.mustRotate("acme") // the first instance's cache still holds version 1
	rotations := env.simOrg().Rotations
	env.clock.Advance(2 * time.Minute)
	env.b = first
	env.tick()
	env.waitSimIdle()
	if got := env.simOrg().Rotations - rotations; got != 0 {
		t.Fatalf("the first instance rotated %d times over the key the second stored", got)
	}
	env.assertServesSimKey("acme")
}

// A key Cisco issued outlasts a brief storage outage: with the production
// waits (no test override), the writes of the new key go on past a 50 ms
// blip and a Raft election's 1.5 s, and the new key is served and stored.
func TestRotation_NewKeyOutlastsABriefStorageOutage(t *testing.T) {
	for name, outage := range map[string]time.Duration{"a 50 ms blip": 50 * time.Millisecond, "a 1.5 s election": 1500 * time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			env.configure("acme", nil)
			env.mustRotate("acme")
			var mu sync.Mutex
			var until time.Time
			env.storage.setFailPut(func(key string) bool {
				if !strings.HasPrefix(key, keyPrefix) {
					return false
				}
				mu.Lock()
				defer mu.Unlock()
				if until.IsZero() {
					until = time.Now().Add(outage)
				}
				return time.Now().Before(until)
			})
			if _, err := env.rotate("acme"); err != nil {
				t.Fatalf("a %s storage outage lost the key Cisco issued: %v", outage, err)
			}
			current := env.simOrg().CurrentKeyID
			if creds := env.mustRead("creds/acme"); creds.Data["access_key_id"] != current || creds.Data["key_state"] != "current" {
				t.Fatalf("creds serve %v (%v), Cisco's key is %s", creds.Data["access_key_id"], creds.Data["key_state"], current)
			}
			if stored, err := getKey(t.Context(), env.storage, "acme"); err != nil || stored == nil || stored.AccessKeyID() != current {
				t.Fatalf("stored key %v, %v; want %s", stored, err, current)
			}
		})
	}
}

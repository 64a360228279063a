package backend

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

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

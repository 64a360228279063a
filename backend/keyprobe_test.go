package backend

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

var t0ctx = context.Background()

// gaugeValue is the value of an organization's gauge; it fails when absent.
func gaugeValue(t *testing.T, families map[string]*dto.MetricFamily, family, name string) float64 {
	t.Helper()
	v, ok := sample(families, family, map[string]string{"name": name})
	if !ok {
		t.Fatalf("no %s for %s", family, name)
	}
	return v
}

// waitKey waits until the stored key satisfies ok, or fails after 10 s.
func (e *testEnv) waitKey(name string, ok func(k *keyState) bool) *keyState {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		k, err := getKey(t0ctx, e.storage, name)
		if err != nil {
			e.t.Fatal(err)
		}
		if k != nil && ok(k) {
			return k
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the key never reached the awaited state: %v", k)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProbe_RecordsWhenAWSAcceptsTheRotatedKey(t *testing.T) {
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys:          []ciscosim.APIKey{{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}}},
		NoRateLimits:     true,
		PropagationDelay: 300 * time.Millisecond,
	}))
	env.configure("acme", nil)
	start := env.sim.State().STSCalls
	resp := env.mustRotate("acme")
	if resp.Data["access_key_id"] != env.simOrg().CurrentKeyID {
		t.Fatal("the rotation did not answer the new key")
	}
	// The rotation does not wait for the check.
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.VerifiedAt.IsZero() || k.VerifyError != "" {
		t.Fatalf("the rotation answered after a check: %+v", k)
	}
	k := env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt.IsZero() })
	if k.VerifyError != "" || k.AccessKeyID != env.simOrg().CurrentKeyID {
		t.Fatalf("verified key %v, error %q", k, k.VerifyError)
	}
	// The new key was refused while it propagated, then accepted.
	if calls := env.sim.State().STSCalls - start; calls < 2 {
		t.Fatalf("%d STS calls; the probe should have retried while the key propagated", calls)
	}
	creds := env.mustRead("creds/acme")
	if creds.Data["key_verified_at"] == nil || creds.Data["key_verify_error"] != "" {
		t.Fatalf("creds: key_verified_at=%v key_verify_error=%v", creds.Data["key_verified_at"], creds.Data["key_verify_error"])
	}
	families, _ := env.scrape()
	if v := gaugeValue(t, families, verifyFailedMetric, "acme"); v != 0 {
		t.Fatalf("%s = %v", verifyFailedMetric, v)
	}
	env.assertNoSecretsLogged()
}

func TestProbe_RecordsAKeyThatAWSNeverAccepts(t *testing.T) {
	env := newTestEnv(t)
	env.b.probes.window = 300 * time.Millisecond
	env.configure("acme", nil)
	env.injectFault(ciscosim.Fault{Kind: "sts_5xx", Count: 1000})
	env.mustRotate("acme")
	k := env.waitKey("acme", func(k *keyState) bool { return k.VerifyError != "" })
	if !k.VerifiedAt.IsZero() || !strings.Contains(k.VerifyError, "unknown") {
		t.Fatalf("key after a failing probe: verified %v, error %q", k.VerifiedAt, k.VerifyError)
	}
	st := env.mustRead("status").Data["organizations"].([]map[string]interface{})[0]
	if st["key_verify_error"] != k.VerifyError {
		t.Fatalf("status shows key_verify_error %v", st["key_verify_error"])
	}
	families, _ := env.scrape()
	if v := gaugeValue(t, families, verifyFailedMetric, "acme"); v != 1 {
		t.Fatalf("%s = %v, want 1", verifyFailedMetric, v)
	}
	if !strings.Contains(env.logs.String(), "has not accepted the rotated key") {
		t.Fatal("the failed probe was not logged")
	}
}

func TestProbe_OffWithKeyCheckFalse(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"key_check": false})
	env.mustRotate("acme")
	time.Sleep(200 * time.Millisecond)
	if n := env.sim.State().STSCalls; n != 0 {
		t.Fatalf("%d STS calls with key_check=false", n)
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
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.Stale {
		t.Fatal("an ambiguous failure should mark the key stale")
	}
	rotations := env.simOrg().Rotations
	env.clock.Advance(2 * time.Hour)
	env.tick()
	k, _ := getKey(t0ctx, env.storage, "acme")
	if k.Stale || k.AccessKeyID != served || env.simOrg().Rotations != rotations {
		t.Fatalf("after recovery: stale=%v key=%s (served %s), Cisco rotations %d→%d", k.Stale, k.AccessKeyID, served, rotations, env.simOrg().Rotations)
	}
	if !strings.Contains(k.StaleCleared, "Cisco did not replace it") || k.VerifiedAt.IsZero() || !k.RetryAt.IsZero() {
		t.Fatalf("lifted mark: stale_cleared=%q verified=%v retry=%v", k.StaleCleared, k.VerifiedAt, k.RetryAt)
	}
	cfg := env.mustRead("config/acme")
	if cfg.Data["stale_cleared"] != k.StaleCleared || cfg.Data["key_state"] != "current" {
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
			if k, _ := getKey(t0ctx, env.storage, "acme"); k.Stale {
				t.Fatal("still stale after the recovery rotation")
			}
		})
	}
}

// Consumers re-read every 2 s from the moment a rotation is due until it
// lands: Cisco kills the old key at the rotation.
func TestCreds_TTLIsOneSecondWhileARotationIsDue(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	env.clock.Advance(30*24*time.Hour - 20*time.Second)
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl != int64(20) {
		t.Fatalf("ttl 20 s before the rotation: %v", ttl)
	}
	env.clock.Advance(30 * time.Second)
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl != int64(1) {
		t.Fatalf("ttl while the rotation is due: %v, want 1", ttl)
	}
	// A rotation that has not landed for long stops the fast re-reads.
	env.clock.Advance(overdueReread)
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl == int64(1) {
		t.Fatal("ttl stays 1 s long after the due time")
	}
	env.tick()
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl != int64(50) {
		t.Fatalf("ttl after the rotation landed: %v, want 50", ttl)
	}
}

// A rotation that ends while the mount goes away starts a probe during
// stop: it must not grow the WaitGroup stop waits on (go test -race), and
// no probe runs once stop has returned.
func TestProbe_StartDuringStop(t *testing.T) {
	var active atomic.Int32
	probe := func(ctx context.Context) {
		active.Add(1)
		defer active.Add(-1)
		<-ctx.Done()
	}
	for i := 0; i < 500; i++ {
		p := newKeyProbes()
		p.start(probeSlot{name: "a"}, probe)
		done := make(chan struct{})
		go func() { p.stop(); close(done) }()
		p.start(probeSlot{name: "b"}, probe)
		<-done
		if n := active.Load(); n != 0 {
			t.Fatalf("%d probes still running after stop returned", n)
		}
	}
}

// A re-check does not end the probe of the name's rotated key: the tick
// starts re-checks from what it read before a rotation that may just have
// stored a new key.
func TestProbe_RecheckLeavesTheRotatedKeysProbe(t *testing.T) {
	p := newKeyProbes()
	defer p.stop()
	var probe context.Context
	started := make(chan struct{})
	p.start(probeSlot{name: "acme"}, func(ctx context.Context) { probe = ctx; close(started); <-ctx.Done() })
	<-started
	p.start(probeSlot{name: "acme", recheck: true}, func(context.Context) {})
	if probe.Err() != nil {
		t.Fatal("the re-check ended the probe of the rotated key")
	}
	p.start(probeSlot{name: "acme"}, func(context.Context) {})
	if probe.Err() == nil {
		t.Fatal("a newer probe did not end the one before")
	}
}

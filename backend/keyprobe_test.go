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

// gaugeValue is the value of an organization's gauge; it fails when absent.
func gaugeValue(t *testing.T, families map[string]*dto.MetricFamily, family, name string) float64 {
	t.Helper()
	v, ok := sample(families, family, map[string]string{"name": name})
	if !ok {
		t.Fatalf("no %s for %s", family, name)
	}
	return v
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
	if k, _ := getKey(t0ctx, env.storage, "acme"); !k.VerifiedAt().IsZero() || k.VerifyError() != "" {
		t.Fatalf("the rotation answered after a check: %+v", k)
	}
	k := env.waitKey("acme", func(k *keyState) bool { return !k.VerifiedAt().IsZero() })
	if k.VerifyError() != "" || k.AccessKeyID() != env.simOrg().CurrentKeyID {
		t.Fatalf("verified key %v, error %q", k, k.VerifyError())
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
	k := env.waitKey("acme", func(k *keyState) bool { return k.VerifyError() != "" })
	if !k.VerifiedAt().IsZero() || !strings.Contains(k.VerifyError(), "unknown") {
		t.Fatalf("key after a failing probe: verified %v, error %q", k.VerifiedAt(), k.VerifyError())
	}
	st := env.statusRows()[0]
	if st["key_verify_error"] != k.VerifyError() {
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
		p.start(probeSlot{name: "a"}, true, probe)
		done := make(chan struct{})
		go func() { p.stop(); close(done) }()
		p.start(probeSlot{name: "b"}, true, probe)
		<-done
		if n := active.Load(); n != 0 {
			t.Fatalf("%d probes still running after stop returned", n)
		}
	}
}

// A scheduled check does not end the probe of the name's rotated key: the
// tick starts checks from what it read before a rotation that may just
// have stored a new key. A scheduled check starts nothing while one runs.
func TestProbe_ScheduledCheckLeavesTheRotatedKeysProbe(t *testing.T) {
	p := newKeyProbes()
	defer p.stop()
	var probe context.Context
	started := make(chan struct{})
	p.start(probeSlot{name: "acme"}, true, func(ctx context.Context) { probe = ctx; close(started); <-ctx.Done() })
	<-started
	release := make(chan struct{})
	if _, ok := p.start(probeSlot{name: "acme", scheduled: true}, false, func(context.Context) { <-release }); !ok {
		t.Fatal("a scheduled check did not start beside the probe")
	}
	if probe.Err() != nil {
		t.Fatal("the scheduled check ended the probe of the rotated key")
	}
	if _, ok := p.start(probeSlot{name: "acme", scheduled: true}, false, func(context.Context) {}); ok {
		t.Fatal("a second scheduled check started while the first ran")
	}
	close(release)
	p.start(probeSlot{name: "acme"}, true, func(context.Context) {})
	if probe.Err() == nil {
		t.Fatal("a newer probe did not end the one before")
	}
}

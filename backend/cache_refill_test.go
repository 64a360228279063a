package backend

// An entry that leaves the cache (a failed write, an Invalidate) must stay in
// the schedule, in status and in metrics. Found in review; each test failed
// before refillDropped.

import (
	"context"
	"testing"
	"time"
)

// On a performance standby, Vault calls Invalidate for every replicated
// write; the organization must not vanish from status and metrics.
func TestCache_InvalidatedOrgStaysInStatusAndMetrics(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.b.invalidate(context.Background(), keyPrefix+"acme")
	rows := env.mustRead("status").Data["organizations"].([]map[string]interface{})
	fams, _ := env.scrape()
	_, hasExpiry := sample(fams, keyExpiryMetric, map[string]string{"name": "acme"})
	if len(rows) != 1 || !hasExpiry {
		t.Fatalf("after invalidate: %d status rows, expiry series present=%v; want 1 and true", len(rows), hasExpiry)
	}
}

// A rotation that comes due while the entry is out of the cache is never
// scheduled again, even after the entry is read back.
func TestCache_DroppedEntryKeepsItsScheduledRotation(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1h"})
	env.mustRotate("acme")
	env.b.invalidate(context.Background(), keyPrefix+"acme")
	env.clock.Advance(2 * time.Hour)
	env.tick()                  // pops acme, finds no cache entry, drops it from the queue
	env.mustRead("config/acme") // refills the cache
	for i := 0; i < 3; i++ {
		env.clock.Advance(2 * time.Hour)
		env.tick()
	}
	env.waitSimIdle()
	k := env.mustRead("creds/acme").Data
	if v := k["version"]; v != 1 {
		return
	}
	t.Fatalf("key still version 1 after 6 h with rotation_period=1h")
}

func TestCache_ScheduledRotationWithoutADrop(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1h"})
	env.mustRotate("acme")
	env.clock.Advance(2 * time.Hour)
	env.tick()
	env.waitSimIdle()
	if v := env.mustRead("creds/acme").Data["version"]; v == 1 {
		t.Fatalf("control did not rotate: %v", v)
	}
}

func TestCache_FailedConfigWriteKeepsTheScheduledRotation(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1h"})
	env.mustRotate("acme")
	env.storage.setFailPut(failUnder(configPrefix, 1))
	if _, err := env.write("config/acme", map[string]interface{}{"disable_automated_rotation": false}); err == nil {
		t.Fatal("write did not fail")
	}
	env.clock.Advance(2 * time.Hour)
	env.tick()
	env.mustRead("config/acme")
	for i := 0; i < 3; i++ {
		env.clock.Advance(2 * time.Hour)
		env.tick()
	}
	env.waitSimIdle()
	if v := env.mustRead("creds/acme").Data["version"]; v == 1 {
		t.Fatalf("never rotated again after a failed config write: version %v", v)
	}
}

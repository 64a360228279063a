package backend

import (
	"testing"
	"time"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

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

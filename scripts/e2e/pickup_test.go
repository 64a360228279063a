//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"
)

// pickupLimit is the promise: a Vault Agent rendering creds holds a new key
// within 65 s of any change, whatever rotation_period is.
const pickupLimit = 65 * time.Second

// TestAgentPickup changes three organizations' keys off their 30-day
// schedule, by a manual rotate, an import and the recovery of a stale key,
// and measures when one real Vault Agent renders each new key.
func TestAgentPickup(t *testing.T) {
	t.Parallel()
	plugins := pluginDir(t)
	s := startSim(t)
	v := startDevVault(t, plugins)
	v.enablePlugin(t, plugins)
	names := []string{"p-rotate", "p-import", "p-stale"}
	orgOf := map[string]string{}
	for i, name := range names {
		orgOf[name] = pickupOrgs[i]
		v.configure(t, s, name, pickupClient, pickupSecret, "org_id="+pickupOrgs[i], "rotation_period=30d")
		v.must(t, "write", "-f", mountPrefix+"/rotate/"+name)
	}
	agent := startAgent(t, v, names...)
	for _, name := range names {
		k := s.org(t, orgOf[name])
		waitFor(t, 30*time.Second, "the first render of "+name, func() bool {
			return agent.renderedFor(name) == credentialsFile(k.CurrentKeyID, k.SecretAccessKey)
		})
	}

	// pickup waits until the agent renders org's current key, measured
	// from changed.
	pickup := func(t *testing.T, name string, changed time.Time) {
		k := s.org(t, orgOf[name])
		want := credentialsFile(k.CurrentKeyID, k.SecretAccessKey)
		waitFor(t, pickupLimit-time.Since(changed), fmt.Sprintf("the agent to render %s's new key within %s", name, pickupLimit), func() bool {
			return agent.renderedFor(name) == want
		})
		t.Logf("%s: the agent rendered the new key %.1f s after the change", name, time.Since(changed).Seconds())
	}

	t.Run("manual rotate", func(t *testing.T) {
		t.Parallel()
		changed := time.Now()
		v.must(t, "write", "-f", mountPrefix+"/rotate/p-rotate")
		pickup(t, "p-rotate", changed)
	})
	t.Run("import", func(t *testing.T) {
		t.Parallel()
		fresh := s.post(t, "/_sim/refresh", `{"org_id":"`+orgOf["p-import"]+`"}`)
		changed := time.Now()
		v.must(t, "write", mountPrefix+"/import/p-import", fmt.Sprintf("access_key_id=%s", fresh["accessKeyId"]),
			fmt.Sprintf("secret_access_key=%s", fresh["secretAccessKey"]), fmt.Sprintf("key_creation_date=%s", fresh["keyCreationDate"]))
		pickup(t, "p-import", changed)
	})
	t.Run("stale recovery", func(t *testing.T) {
		t.Parallel()
		org := orgOf["p-stale"]
		s.post(t, "/_sim/faults", `{"kind":"malformed","org_id":"`+org+`"}`)
		if _, code := v.run(t, "write", "-f", mountPrefix+"/rotate/p-stale"); code == 0 {
			t.Fatal("a rotation whose reply was lost reported success")
		}
		lost := s.org(t, org).CurrentKeyID // Cisco rotated; the reply was lost
		if state := v.data(t, "read", mountPrefix+"/config/p-stale")["key_state"]; state != "stale" {
			t.Fatalf("key_state after a lost reply: %v", state)
		}
		var recovered time.Time
		waitFor(t, 3*time.Minute, "the scheduler to recover the stale key", func() bool {
			if s.org(t, org).CurrentKeyID != lost {
				recovered = time.Now()
				return true
			}
			return false
		})
		pickup(t, "p-stale", recovered)
	})
}

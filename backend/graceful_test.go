package backend

import (
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"

	"github.com/hashicorp/vault/sdk/logical"
)

// A graceful rotation answers at once without calling Cisco; from then on
// creds report ttl 1; a second request joins it; a tick before rotates_at
// does nothing and the first tick after rotates once.
func TestGraceful_RotatesAtTheFirstTickAfterEveryConsumerReReads(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"key_check_interval": 0})
	env.mustRotate("acme")
	rotations := env.simOrg().Rotations
	resp := env.mustWrite("rotate/acme", map[string]interface{}{"graceful": true})
	at := parseTimeField(resp.Data["rotates_at"])
	if want := env.clock.Now().Add(gracefulWait); at.Before(want.Add(-time.Second)) || at.After(want) {
		t.Fatalf("rotates_at %v, want about %v", at, want)
	}
	if env.simOrg().Rotations != rotations {
		t.Fatal("a graceful request called Cisco")
	}
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl != int64(1) {
		t.Fatalf("creds ttl %v while a graceful rotation is pending, want 1", ttl)
	}
	env.clock.Advance(10 * time.Second)
	if again := env.mustWrite("rotate/acme", map[string]interface{}{"graceful": true}); parseTimeField(again.Data["rotates_at"]) != at {
		t.Fatalf("a second request moved rotates_at to %v", again.Data["rotates_at"])
	}
	for name, path := range map[string]string{"config": "config/acme"} {
		if got := parseTimeField(env.mustRead(path).Data["graceful_rotation_at"]); got != at {
			t.Fatalf("%s read shows graceful_rotation_at %v", name, got)
		}
	}
	rows := env.statusRows()
	if parseTimeField(rows[0]["graceful_rotation_at"]) != at {
		t.Fatalf("status row %v", rows[0])
	}
	env.clock.Set(at.Add(-time.Second))
	env.tick()
	if env.simOrg().Rotations != rotations {
		t.Fatal("a tick before rotates_at rotated")
	}
	env.clock.Set(at)
	env.tick()
	env.waitSimIdle()
	if got := env.simOrg().Rotations - rotations; got != 1 {
		t.Fatalf("%d rotations at rotates_at, want 1", got)
	}
	creds := env.assertServesSimKey("acme")
	if creds.Data["ttl"] == int64(1) {
		t.Fatal("creds still report ttl 1 after the graceful rotation")
	}
	if !hasEvent(env, bucketkey.NoticeRotate, "trigger", triggerGraceful) {
		t.Fatal("no rotate event with trigger graceful")
	}
	env.tick()
	if got := env.simOrg().Rotations - rotations; got != 1 {
		t.Fatalf("%d rotations after a second tick, want 1", got)
	}
}

// The request survives a restart, and disable_automated_rotation does not
// stop it.
func TestGraceful_SurvivesARestartAndAutomationOff(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"key_check_interval": 0, "disable_automated_rotation": true})
	env.mustRotate("acme")
	rotations := env.simOrg().Rotations
	at := parseTimeField(env.mustWrite("rotate/acme", map[string]interface{}{"graceful": true}).Data["rotates_at"])
	env.b.Cleanup(t.Context())
	restarted := env.sibling()
	if err := restarted.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	restarted.clock.Set(at)
	restarted.tick()
	restarted.waitSimIdle()
	if got := env.simOrg().Rotations - rotations; got != 1 {
		t.Fatalf("%d rotations after a restart and rotates_at, want 1", got)
	}
	restarted.assertServesSimKey("acme")
}

// A plain rotate supersedes a pending graceful one, and a delete cancels
// it.
func TestGraceful_PlainRotateSupersedesAndDeleteCancels(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"key_check_interval": 0})
	env.mustRotate("acme")
	at := parseTimeField(env.mustWrite("rotate/acme", map[string]interface{}{"graceful": true}).Data["rotates_at"])
	env.mustRotate("acme")
	rotations := env.simOrg().Rotations
	env.clock.Set(at)
	env.tick()
	if env.simOrg().Rotations != rotations {
		t.Fatal("a graceful rotation ran after a plain rotate superseded it")
	}
	if got := env.mustRead("config/acme").Data["graceful_rotation_at"]; got != nil {
		t.Fatalf("graceful_rotation_at %v after a plain rotate", got)
	}
	env.mustWrite("rotate/acme", map[string]interface{}{"graceful": true})
	env.mustRequest(logical.DeleteOperation, "config/acme", nil)
	env.configure("acme", map[string]interface{}{"key_check_interval": 0})
	if resp, err := env.write("rotate/acme", map[string]interface{}{"graceful": true}); err == nil && (resp == nil || !resp.IsError()) {
		t.Fatal("a graceful request for an organization without a key was accepted")
	}
}

// An import, of the served key again or of a dashboard key, keeps a
// pending graceful rotation: it still runs at rotates_at.
func TestGraceful_ImportKeepsIt(t *testing.T) {
	for name, again := range map[string]bool{"the served key again": true, "a dashboard key": false} {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", map[string]interface{}{"key_check_interval": 0})
			env.mustRotate("acme")
			at := parseTimeField(env.mustWrite("rotate/acme", map[string]interface{}{"graceful": true}).Data["rotates_at"])
			var data map[string]interface{}
			if !again {
				data = env.refreshed()
			} else {
				creds := env.mustRead("creds/acme")
				data = map[string]interface{}{"access_key_id": creds.Data["access_key_id"], "secret_access_key": creds.Data["secret_access_key"],
					"key_creation_date": creds.Data["key_creation_date"]}
			}
			env.mustWrite("import/acme", data)
			if got := parseTimeField(env.mustRead("config/acme").Data["graceful_rotation_at"]); got != at {
				t.Fatalf("graceful_rotation_at %v after the import, want %v", got, at)
			}
			rotations := env.simOrg().Rotations
			env.clock.Set(at)
			env.tick()
			env.waitSimIdle()
			if got := env.simOrg().Rotations - rotations; got != 1 {
				t.Fatalf("%d rotations at rotates_at after the import, want 1", got)
			}
			env.assertServesSimKey("acme")
		})
	}
}

package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
)

func TestScheduler_WALCrashRecoveryAcrossRestart(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	served := env.simOrg()

	// A crash between Cisco's reply and the storage write: the WAL entry
	// is stored, Cisco rotated, and the reply died with the process.
	if _, err := framework.PutWAL(t.Context(), env.storage, walKindRotate, &rotationWAL{Name: "acme", Version: 1, Started: env.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := getConfig(t.Context(), env.storage, "acme")
	if _, err := newCiscoClient(cfg.settings(), nil, 0, nil).rotateKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	env.b.Cleanup(t.Context())

	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	restarted.sim = env.sim // the config points at the first env's Cisco
	creds := restarted.mustRead("creds/acme")
	if creds.Data["key_state"] != "stale" || creds.Data["access_key_id"] != served.CurrentKeyID {
		t.Fatalf("after restart: %v %v", creds.Data["key_state"], creds.Data["access_key_id"])
	}
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("orphaned WAL entries left: %v", ids)
	}
	restarted.tick() // due at once
	creds = restarted.mustRead("creds/acme")
	if creds.Data["key_state"] != "current" || creds.Data["access_key_id"] != env.simOrg().CurrentKeyID || creds.Data["version"] != 2 {
		t.Fatalf("after recovery: %v", creds.Data)
	}
}

func TestScheduler_WALOfFinishedRotationIsDropped(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	// The rotation to version 1 stored its key but could not delete its WAL.
	if _, err := framework.PutWAL(t.Context(), env.storage, walKindRotate, &rotationWAL{Name: "acme", Version: 0}); err != nil {
		t.Fatal(err)
	}
	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	creds := restarted.mustRead("creds/acme")
	if creds.Data["key_state"] != "current" {
		t.Fatal("a finished rotation's WAL marked the key stale")
	}
}

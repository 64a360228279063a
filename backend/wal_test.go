package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/framework"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
)

func TestScheduler_WALCrashRecoveryAcrossRestart(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	served := env.simOrg()

	env.crashAfterCiscoRotated("acme", 1)
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

// crashAfterCiscoRotated leaves what a crash between Cisco's reply and the
// storage write leaves: the WAL entry of a rotation from version is
// stored, Cisco rotated, and the reply died with the process.
func (e *testEnv) crashAfterCiscoRotated(name string, version int) {
	e.t.Helper()
	if _, err := framework.PutWAL(e.t.Context(), e.storage, walKindRotate, &rotationWAL{Name: name, Version: version, Started: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	cfg, _ := getConfig(e.t.Context(), e.storage, name)
	if _, err := cisco.NewClient(cfg.settings()).RotateKey(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
}

// sibling is a second env on the same storage, simulator, clock, logs and
// events, whose backend the caller boots, as a restarted Vault would.
func (e *testEnv) sibling() *testEnv {
	return &testEnv{t: e.t, storage: e.storage, sim: e.sim, srv: e.srv, clock: e.clock, logs: e.logs, system: e.system, events: e.events}
}

package backend

import (
	"strings"
	"testing"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// A delete removes the organization's WAL entries, so that they do not mark
// the key of one re-created under its name stale.
func TestDelete_RemovesTheWAL(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	if _, err := framework.PutWAL(t.Context(), env.storage, walKindRotate, &rotationWAL{Name: "acme", Version: 1, Started: env.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	env.mustRequest("delete", "config/acme", nil)
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("WAL entries survived the delete: %v", ids)
	}
	env.configure("acme", nil)
	env.mustRotate("acme")
	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	if got := restarted.mustRead("creds/acme").Data["key_state"]; got != "current" {
		t.Fatalf("re-created organization: key_state = %v", got)
	}
}

// A delete whose WAL clean-up fails reports the failure and leaves the
// organization in place (the config goes last). The entry records the key
// id it started from, so a key stored after the organization is written
// again settles it: the next tick rotates nothing.
func TestDelete_WithFailedWALCleanupKeepsTheOrganization(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme") // v1
	env.storage.setFailDelete(func(key string) bool { return strings.HasPrefix(key, "wal/") })
	env.mustRotate("acme") // v2 stored; its WAL (version 1) stays, walPending
	if _, err := env.request(logical.DeleteOperation, "config/acme", nil); err == nil {
		t.Fatal("a delete whose WAL clean-up failed reported success")
	}
	if env.mustRead("config/acme") == nil {
		t.Fatal("a failed delete removed the organization anyway")
	}
	env.storage.setFailDelete(nil)
	env.configure("acme", nil)
	env.mustRotate("acme") // fresh key, version 1
	before := env.simOrg().Rotations
	env.tick() // same instant: nothing is due
	if got := env.simOrg().Rotations - before; got != 0 {
		t.Fatalf("a tick right after a successful rotation rotated %d more times (trigger recovery: %v)",
			got, hasEvent(env, bucketkey.NoticeRotate, "trigger", triggerRecovery))
	}
}

// A delete deletes the key before the WAL entries. A rotation whose key
// storage refused leaves only its WAL entry to say that the stored key may
// be dead: when the key delete fails, that entry stays, and after a restart
// the dead key is served as stale, not as current.
func TestDelete_WhoseKeyDeleteFailsKeepsTheWAL(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme") // v1
	env.storage.setFailPut(failKeyPuts(-1))
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("a rotation whose key storage failed reported success")
	}
	env.storage.setFailPut(nil)
	env.storage.setFailDelete(func(key string) bool { return strings.HasPrefix(key, keyPrefix) })
	if _, err := env.request(logical.DeleteOperation, "config/acme", nil); err == nil {
		t.Fatal("a delete whose key delete failed reported success")
	}
	env.storage.setFailDelete(nil)

	restarted := env.sibling()
	if err := restarted.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	creds := restarted.mustRead("creds/acme")
	if creds.Data["key_state"] != "stale" {
		t.Fatalf("after the failed delete and a restart, creds serve %v as %v; Cisco replaced it",
			creds.Data["access_key_id"], creds.Data["key_state"])
	}
}

// The other half-landed delete: the key is gone, the WAL entry and the
// config stay. The entry, from a rotation of a stored key, guards no key
// now, so the tick drops it and nothing is rotated. (An entry from a first
// rotation, from no key, still means a lost key and is recovered.)
func TestDelete_WhoseWALDeleteFailsRotatesNothing(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme") // v1
	env.crashAfterCiscoRotated("acme", 1)
	env.storage.setFailDelete(func(key string) bool { return strings.HasPrefix(key, "wal/") })
	if _, err := env.request(logical.DeleteOperation, "config/acme", nil); err == nil {
		t.Fatal("a delete whose WAL clean-up failed reported success")
	}
	env.storage.setFailDelete(nil)
	before := env.simOrg().Rotations
	env.tick()
	if got := env.simOrg().Rotations - before; got != 0 {
		t.Fatalf("a tick rotated an organization whose key was deleted %d times", got)
	}
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("WAL entries of a deleted key left: %v", ids)
	}
}

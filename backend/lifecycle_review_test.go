package backend

// Interleavings found by a review of the lifecycle fixes; each test failed
// before its fix.

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// A restart finds the WAL entry of a rotation that Cisco finished (the reply
// died with the process), and storage refuses the stale mark. The load used
// to fail with the old key already cached, and creds, which did not load,
// served the dead key as current. Now the cache takes the mark, the entry
// stays, and the load goes on.
func TestLifecycle_StaleMarkRefusedAtLoadStillShows(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	served := env.simOrg()
	env.crashAfterCiscoRotated("acme", 1)
	if env.simOrg().CurrentKeyID == served.CurrentKeyID {
		t.Fatal("Cisco did not rotate")
	}
	// Storage refuses key writes at the restart (and keeps refusing).
	env.storage.setFailPut(failKeyPuts(-1))
	env2 := env.sibling()
	if err := env2.boot(env.storage); err != nil {
		t.Fatalf("a refused stale mark stopped the load: %v", err)
	}
	env2.b.storeRetryWait = 0
	for i := 0; i < 3; i++ {
		_, tickErr := env2.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: env.storage})
		t.Logf("tick %d: %v", i, tickErr)
		creds := env2.mustRead("creds/acme")
		if creds.Data["access_key_id"] == served.CurrentKeyID && creds.Data["key_state"] != "stale" {
			t.Fatalf("tick %d: creds serves %v, Cisco replaced it with %s, key_state=%v (not stale)",
				i, creds.Data["access_key_id"], env.simOrg().CurrentKeyID, creds.Data["key_state"])
		}
	}
	// The WAL entry stayed, so a restart with healthy storage knows too.
	env.storage.setFailPut(nil)
	env3 := env.sibling()
	if err := env3.boot(env.storage); err != nil {
		t.Fatal(err)
	}
	if creds := env3.mustRead("creds/acme"); creds.Data["access_key_id"] == served.CurrentKeyID && creds.Data["key_state"] != "stale" {
		t.Fatalf("after a restart, the dead key is served as %v", creds.Data["key_state"])
	}
}

// A delete whose WAL clean-up failed used to leave the old organization's
// entry behind; a re-created organization's fresh key (version 1, not above
// the entry's) was then judged unsettled, marked stale and rotated again by
// the next tick. Now the config goes last, so the failed delete leaves the
// organization in place, and the entry records the key id it started from,
// so a key stored later settles it.
func TestLifecycle_DeleteWithFailedWALCleanupKeepsTheOrganization(t *testing.T) {
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
			got, hasEvent(env, eventRotate, "trigger", triggerRecovery))
	}
}

// blockingStorage returns a corrupt config/acme on the first armed Get, and
// holds that Get until released.
type blockingStorage struct {
	logical.Storage
	mu      sync.Mutex
	armed   bool
	reached chan struct{}
	release chan struct{}
}

func (s *blockingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.mu.Lock()
	hit := s.armed && key == configPrefix+"acme"
	if hit {
		s.armed = false
	}
	s.mu.Unlock()
	if hit {
		close(s.reached)
		<-s.release
		return &logical.StorageEntry{Key: key, Value: []byte("{corrupt")}, nil
	}
	return s.Storage.Get(ctx, key)
}

// A reader that decoded a corrupt entry flagged the name after a delete and
// re-create had cleared it: a healthy organization was listed as unreadable
// ("delete config/<name> and write it again") for good.
func TestLifecycle_UnreadableFlagDoesNotOutliveARecreate(t *testing.T) {
	bs := &blockingStorage{Storage: &logical.InmemStorage{}, reached: make(chan struct{}), release: make(chan struct{})}
	st := &testStorage{Storage: bs}
	env := newTestEnv(t, withStorage(st))
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.b.orgs.Drop("acme") // e.g. an invalidate, or a failed write
	bs.mu.Lock()
	bs.armed = true
	bs.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); _, _ = env.read("creds/acme") }()
	<-bs.reached
	env.mustRequest(logical.DeleteOperation, "config/acme", nil)
	env.configure("acme", nil)
	close(bs.release)
	<-done
	resp := env.mustRequest(logical.ListOperation, "config/", nil)
	if info, _ := resp.Data["key_info"].(map[string]interface{}); info["acme"] != nil {
		if e, _ := env.b.cached("acme"); e != nil {
			t.Fatalf("acme is cached and healthy but listed as %v", info["acme"])
		}
	}
}

// One undecodable WAL entry stopped the mount: every load failed, so ticks
// never ran and config writes failed.
func TestLifecycle_CorruptWALEntryDoesNotStopTheMount(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	if err := env.storage.Put(t.Context(), &logical.StorageEntry{Key: framework.WALPrefix + "bad", Value: []byte("{corrupt")}); err != nil {
		t.Fatal(err)
	}
	env2 := env.sibling()
	_ = env2.boot(env.storage)
	if _, err := env2.write("config/acme", map[string]interface{}{"rotation_period": "30d"}); err != nil {
		t.Fatalf("a config write fails because of one corrupt WAL entry: %v", err)
	}
}

// Found by make soak: a delete removed the WAL entries first, then failed to
// delete the key. A rotation whose key storage had refused left only its
// WAL entry to say that the stored key may be dead, so after a restart the
// dead key was served as current. The key now goes first.
func TestLifecycle_DeleteWhoseKeyDeleteFailsKeepsTheWAL(t *testing.T) {
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
func TestLifecycle_DeleteWhoseWALDeleteFailsRotatesNothing(t *testing.T) {
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

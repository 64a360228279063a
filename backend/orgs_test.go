package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// An entry that does not decode is skipped: other organizations' writes and
// the tick go on, reading it says how to fix it, lists flag it, nothing
// quotes its secret, and it can be deleted, with its WAL entries, and
// written again.
func TestOrgs_UnreadableEntryIsSkippedAndDeletable(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.configureOwnOrg("broken", nil)
	env.mustRotate("broken")
	if _, err := framework.PutWAL(t.Context(), env.storage, walKindRotate, &rotationWAL{Name: "broken", Version: 1, Started: env.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	const leaked = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYUNREADABLE"
	corrupt := []byte(`{"secret_access_key":"` + leaked + `","version":"one"}`)
	if err := env.storage.Put(t.Context(), &logical.StorageEntry{Key: keyPrefix + "broken", Value: corrupt}); err != nil {
		t.Fatal(err)
	}

	restarted := newTestEnv(t, withStorage(env.storage), withClock(env.clock))
	restarted.mustRotate("acme")
	restarted.tick()
	_, err := restarted.read("creds/broken")
	if err == nil || !strings.Contains(err.Error(), "delete config/broken") {
		t.Fatalf("reading the unreadable organization: %v", err)
	}
	list := restarted.mustRequest(logical.ListOperation, "config/", nil)
	info, _ := list.Data["key_info"].(map[string]interface{})
	if _, ok := info["broken"]; !ok {
		t.Fatalf("the list does not flag the unreadable entry: %v", list.Data)
	}
	if logs := restarted.logs.String(); !strings.Contains(logs, `"name":"broken"`) || strings.Contains(logs, leaked) {
		t.Fatalf("the skipped entry is not logged by name, or its secret is: %s", logs)
	}
	if strings.Contains(err.Error(), leaked) {
		t.Fatal("the error quotes the stored secret")
	}

	restarted.mustRequest(logical.DeleteOperation, "config/broken", nil)
	if ids, _ := framework.ListWAL(t.Context(), env.storage); len(ids) != 0 {
		t.Fatalf("the unreadable organization's WAL outlived its delete: %v", ids)
	}
	if list := restarted.mustRequest(logical.ListOperation, "config/", nil); list.Data["key_info"] != nil {
		t.Fatalf("the deleted entry is still flagged: %v", list.Data)
	}
	restarted.configure("broken", map[string]interface{}{"force": true}) // acme shares its organization
	restarted.mustRotate("broken")
	restarted.assertServesSimKey("broken")
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

// A reader that decodes a corrupt entry while a delete and a re-create
// replace it does not flag the re-created, healthy organization as
// unreadable ("delete config/<name> and write it again").
func TestOrgs_UnreadableFlagDoesNotOutliveARecreate(t *testing.T) {
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

// An entry that leaves the cache (a failed write, an Invalidate) stays in the
// schedule, in status and in metrics: refillDropped reads it back.
//
// On a performance standby, Vault calls Invalidate for every replicated
// write; the organization must not vanish from status and metrics.
func TestRefill_InvalidatedOrgStaysInStatusAndMetrics(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.b.invalidate(context.Background(), keyPrefix+"acme")
	rows := env.statusRows()
	fams, _ := env.scrape()
	_, hasExpiry := sample(fams, keyExpiryMetric, map[string]string{"name": "acme"})
	if len(rows) != 1 || !hasExpiry {
		t.Fatalf("after invalidate: %d status rows, expiry series present=%v; want 1 and true", len(rows), hasExpiry)
	}
}

// A rotation that comes due while the entry is out of the cache still
// happens once the entry is read back.
func TestRefill_DroppedEntryKeepsItsScheduledRotation(t *testing.T) {
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

// The same schedule without a drop, as a control.
func TestRefill_ScheduledRotationWithoutADrop(t *testing.T) {
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

// A failed config write drops the entry; its scheduled rotation still
// happens.
func TestRefill_FailedConfigWriteKeepsTheScheduledRotation(t *testing.T) {
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

// A read of one organization before the mount has loaded (a new active
// node, before its first tick) reads that organization alone: with 10,000
// organizations it must not wait for all of them. A list then loads them.
func TestOrgs_ReadBeforeTheLoadReadsOneOrganization(t *testing.T) {
	const orgs = 500
	st := newTestStorage()
	seedOrganizations(t, st, orgs, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
	env := newTestEnv(t, withStorage(st), withoutInitialize())

	gets, lists := st.gets.Load(), st.lists.Load()
	creds := env.mustRead("creds/org-00007")
	if creds.Data["access_key_id"] != fmt.Sprintf("AKIA%016d", 7) || creds.Data["key_state"] != "current" {
		t.Fatalf("creds before the load: %v %v", creds.Data["access_key_id"], creds.Data["key_state"])
	}
	if n := st.gets.Load() - gets; n > 2 {
		t.Fatalf("a read before the load made %d storage reads; want the organization's config and key", n)
	}
	if n := st.lists.Load() - lists; n > 1 {
		t.Fatalf("a read before the load listed storage %d times; want the WAL once", n)
	}
	if resp, err := env.request(logical.ReadOperation, "creds/org-99999", nil); err != nil || !resp.IsError() {
		t.Fatalf("an unknown name before the load: %v %v", resp, err)
	}

	list := env.mustRequest(logical.ListOperation, "config/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != orgs {
		t.Fatalf("list after the lazy read: %d names", len(keys))
	}
	if !env.b.loaded.Load() {
		t.Fatal("a list did not load the mount")
	}
}

// Vault waits for every mount's initialize before a node becomes active:
// initialize must not wait for the organizations to load.
func TestOrgs_InitializeDoesNotWaitForTheLoad(t *testing.T) {
	st := newTestStorage()
	seedOrganizations(t, st, 50, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
	env := newTestEnv(t, withStorage(st), withoutInitialize())
	release := make(chan struct{})
	st.mu.Lock()
	st.failGet = func(key string) bool { <-release; return false }
	st.mu.Unlock()

	done := make(chan error, 1)
	go func() { done <- env.b.Initialize(t.Context(), &logical.InitializationRequest{Storage: st}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("initialize waited for the load")
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for !env.b.loaded.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the background load never finished")
		}
		time.Sleep(5 * time.Millisecond)
	}
	env.b.sched.mu.Lock()
	queued := len(env.b.sched.queue.items)
	env.b.sched.mu.Unlock()
	if queued != 50 {
		t.Fatalf("the background load queued %d organizations, want 50", queued)
	}
}

// startBlockedLoad blocks every storage read of st (after calling seen
// with its key) until release closes, starts the background load, and
// returns once the load is blocked in a read.
func startBlockedLoad(t *testing.T, env *testEnv, st *testStorage, seen func(key string)) (release chan struct{}) {
	t.Helper()
	release, blocked := make(chan struct{}), make(chan struct{}, 1)
	st.mu.Lock()
	st.failGet = func(key string) bool {
		seen(key)
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-release
		return false
	}
	st.mu.Unlock()
	if err := env.b.Initialize(t.Context(), &logical.InitializationRequest{Storage: st}); err != nil {
		t.Fatal(err)
	}
	<-blocked
	return release
}

// Cleanup waits for the background load, so that nothing of the mount
// touches storage after it returns (Vault clears the storage view then),
// and gives up after loadEndWait.
func TestOrgs_CleanupWaitsForTheLoad(t *testing.T) {
	st := newTestStorage()
	seedOrganizations(t, st, 20, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
	env := newTestEnv(t, withStorage(st), withoutInitialize())
	var cleaned atomic.Bool
	release := startBlockedLoad(t, env, st, func(key string) {
		if cleaned.Load() {
			t.Errorf("a storage read of %s after Cleanup returned", key)
		}
	})
	done := make(chan struct{})
	go func() { env.b.Cleanup(context.Background()); cleaned.Store(true); close(done) }()
	select {
	case <-done:
		close(release)
		t.Fatal("Cleanup returned while the load was reading storage")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Cleanup did not return after the load ended")
	}

	// A load that never ends holds Cleanup up for loadEndWait only.
	env2 := newTestEnv(t, withStorage(newTestStorage()), withoutInitialize())
	stuck := make(chan struct{})
	defer close(stuck)
	env2.storage.mu.Lock()
	env2.storage.failGet = func(string) bool { <-stuck; return false }
	env2.storage.mu.Unlock()
	env2.b.loadEndWait = 100 * time.Millisecond
	if err := env2.b.Initialize(t.Context(), &logical.InitializationRequest{Storage: env2.storage}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	env2.b.Cleanup(context.Background())
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("Cleanup waited %s for a load that never ends", waited)
	}
}

// The waits for a running load end with the caller's deadline: a tick and
// a creds read whose contexts end in 300 ms return, while the load is stuck
// settling the WAL.
func TestOrgs_WaitsForTheLoadEndWithTheDeadline(t *testing.T) {
	st := newTestStorage()
	seedOrganizations(t, st, 5, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
	if _, err := framework.PutWAL(t.Context(), st, walKindRotate, &rotationWAL{Name: "org-00000", Version: 1}); err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t, withStorage(st), withoutInitialize())
	release := startBlockedLoad(t, env, st, func(string) {})
	defer close(release)
	for _, req := range []*logical.Request{
		{Operation: logical.RollbackOperation, Storage: st},
		{Operation: logical.ReadOperation, Path: "creds/org-00001", Storage: st},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		done := make(chan struct{})
		go func() { _, _ = env.b.HandleRequest(ctx, req); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Errorf("%s %q still waited for the load 3 s after its 300 ms deadline", req.Operation, req.Path)
		}
		cancel()
	}
}

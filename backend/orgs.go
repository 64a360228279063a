package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// orgEntry is an immutable snapshot of one organization. Writers replace
// it whole, so a reader never sees half of an update.
type orgEntry struct {
	config *orgConfig
	key    *keyState
}

// String and GoString keep secrets out of any printing of an entry.
func (e orgEntry) String() string {
	var cfg, key string
	if e.config != nil {
		cfg = e.config.String()
	}
	if e.key != nil {
		key = e.key.String()
	}
	return "orgEntry{" + cfg + ", " + key + "}"
}

func (e orgEntry) GoString() string { return e.String() }

// ensureLoaded reads every organization once per backend instance, and
// settles the rotations that a crash left unfinished.
func (b *backend) ensureLoaded(ctx context.Context, s logical.Storage) error {
	if b.loaded.Load() {
		return nil
	}
	b.loadMu.Lock()
	defer b.loadMu.Unlock()
	if b.loaded.Load() {
		return nil
	}
	names, err := s.List(ctx, configPrefix)
	if err != nil {
		return err
	}
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			continue
		}
		if _, err := b.org(ctx, s, name); err != nil {
			var bad *unreadableEntryError
			if !errors.As(err, &bad) {
				return err
			}
			// One bad entry must not stop the others: skip it, and keep
			// it visible and deletable.
			b.logger.Error("skipping an organization whose stored entry cannot be decoded; delete config/<name> and write it again",
				"name", name, "entry", bad.storageKey, "reason", bad.reason)
		}
	}
	if b.writeSafe() {
		if err := b.recoverOrphanedRotations(ctx, s); err != nil {
			return err
		}
	}
	now := b.now()
	for _, name := range names {
		if e, _ := b.cached(name); e != nil {
			b.sched.update(name, e, now)
		}
	}
	b.loaded.Store(true)
	return nil
}

// cached is the one read of the cache: the organization (nil on a miss)
// and the generation to pass to a fill.
func (b *backend) cached(name string) (*orgEntry, uint64) {
	b.cacheMu.RLock()
	defer b.cacheMu.RUnlock()
	return b.cache[name], b.cacheGen
}

// org returns the organization, reading storage on a cache miss, or
// (nil, nil) when it is not configured. It takes no lock, so callers may
// hold the name's lock or not. A write that lands during a miss changes the
// generation: the read is then repeated, so that neither the cache nor the
// caller gets one version's config with another's key.
func (b *backend) org(ctx context.Context, s logical.Storage, name string) (*orgEntry, error) {
	for attempt := 0; ; attempt++ {
		e, gen := b.cached(name)
		if e != nil {
			return e, nil
		}
		cfg, err := getConfig(ctx, s, name)
		var key *keyState
		if err == nil && cfg != nil {
			key, err = getKey(ctx, s, name)
		}
		if err != nil {
			return nil, b.noteUnreadable(name, gen, err)
		}
		b.cacheMu.Lock()
		settled := b.cacheGen == gen
		if settled && cfg != nil {
			e = &orgEntry{config: cfg, key: key}
			b.cache[name] = e
		}
		if settled {
			delete(b.unreadable, name)
		}
		b.cacheMu.Unlock()
		if settled || attempt >= 3 {
			if cfg == nil {
				return nil, nil
			}
			return &orgEntry{config: cfg, key: key}, nil
		}
	}
}

// noteUnreadable remembers a name whose stored entry does not decode, so
// that lists and status can show it, and says how to fix it. A write since
// the read began (gen moved) may have replaced the entry: then the name is
// not flagged.
func (b *backend) noteUnreadable(name string, gen uint64, err error) error {
	var bad *unreadableEntryError
	if !errors.As(err, &bad) {
		return err
	}
	b.cacheMu.Lock()
	if b.cacheGen == gen {
		b.unreadable[name] = bad.Error()
	}
	b.cacheMu.Unlock()
	return fmt.Errorf("organization %q: %w; delete config/%s, then write it again", name, err, name)
}

// unreadableOrgs returns the names whose stored entry does not decode,
// sorted, with the reason.
func (b *backend) unreadableOrgs() (names []string, reasons map[string]string) {
	b.cacheMu.RLock()
	defer b.cacheMu.RUnlock()
	reasons = make(map[string]string, len(b.unreadable))
	for name, reason := range b.unreadable {
		names = append(names, name)
		reasons[name] = reason
	}
	sort.Strings(names)
	return names, reasons
}

// configuredOrg loads the mount and looks name up without its lock. A
// name that is not configured gives the 400 that says so.
func (b *backend) configuredOrg(ctx context.Context, s logical.Storage, name string) (*orgEntry, *logical.Response, error) {
	if err := b.ensureLoaded(ctx, s); err != nil {
		return nil, nil, err
	}
	e, err := b.org(ctx, s, name)
	if err != nil {
		return nil, nil, err
	}
	if e == nil {
		return nil, notConfiguredResponse(name), nil
	}
	return e, nil, nil
}

// lockName takes the name's write lock and returns its unlock.
func (b *backend) lockName(name string) (unlock func()) {
	lock := locksutil.LockForKey(b.locks, name)
	lock.Lock()
	return lock.Unlock
}

// lockOrg is the prologue of every change to one organization: load the
// mount, take the name's lock, look the organization up (nil when it is
// not configured). The caller must call unlock.
func (b *backend) lockOrg(ctx context.Context, s logical.Storage, name string) (e *orgEntry, unlock func(), err error) {
	if err := b.ensureLoaded(ctx, s); err != nil {
		return nil, nil, err
	}
	unlock = b.lockName(name)
	if e, err = b.org(ctx, s, name); err != nil {
		unlock()
		return nil, nil, err
	}
	return e, unlock, nil
}

// setOrgLocked replaces the cached organization (nil removes it) and
// updates the rotation queue, after storage was written.
func (b *backend) setOrgLocked(name string, e *orgEntry) {
	b.cacheMu.Lock()
	// A fill that read storage before this write must not land.
	b.cacheGen++
	delete(b.unreadable, name)
	delete(b.dropped, name)
	if e == nil {
		delete(b.cache, name)
	} else {
		b.cache[name] = e
	}
	b.cacheMu.Unlock()
	if e == nil {
		b.sched.remove(name)
	} else {
		b.sched.update(name, e, b.now())
	}
}

// dropCached forgets the cached organization, so that the next access
// reads storage again, and marks it for refillDropped.
func (b *backend) dropCached(name string) {
	b.cacheMu.Lock()
	delete(b.cache, name)
	b.dropped[name] = struct{}{}
	b.cacheGen++
	b.cacheMu.Unlock()
}

// markDropped marks a name whose cache entry is missing for refillDropped.
func (b *backend) markDropped(name string) {
	b.cacheMu.Lock()
	if b.cache[name] == nil {
		b.dropped[name] = struct{}{}
	}
	b.cacheMu.Unlock()
}

// refillDropped reads every dropped organization again and reschedules it.
// With nothing dropped it touches no storage.
func (b *backend) refillDropped(ctx context.Context, s logical.Storage) {
	b.cacheMu.RLock()
	names := make([]string, 0, len(b.dropped))
	for name := range b.dropped {
		names = append(names, name)
	}
	b.cacheMu.RUnlock()
	for _, name := range names {
		e, err := b.org(ctx, s, name)
		if err != nil {
			continue // unreadable (flagged) or storage failing: next time
		}
		b.cacheMu.Lock()
		// A drop since the read keeps the mark.
		settled := b.cache[name] == e || (e == nil && b.cache[name] == nil)
		if settled {
			delete(b.dropped, name)
		}
		b.cacheMu.Unlock()
		if !settled {
			continue
		}
		if e == nil {
			b.sched.remove(name)
		} else {
			b.sched.update(name, e, b.now())
		}
	}
}

// deleteOrgLocked deletes the organization's key, then its WAL entries, then
// its config; no rotation of the name runs while its lock is held. The key
// goes first: until it is gone, its WAL entries may be all that says it is
// dead. The config goes last: a delete that fails half-way leaves an
// organization that is still listed and can be deleted again, never a key
// or WAL entries without their config.
func (b *backend) deleteOrgLocked(ctx context.Context, s logical.Storage, name string) error {
	if err := deleteKey(ctx, s, name); err != nil {
		return err
	}
	err := b.deleteRotationWALsOf(ctx, s, name)
	if err == nil {
		err = deleteConfig(ctx, s, name)
	}
	if err != nil {
		// The delete half-landed: read storage again next time, and let the
		// tick drop WAL entries left behind, which guard no key now.
		b.dropCached(name)
		b.sched.remove(name)
		b.walPending.Store(true)
		return err
	}
	b.resetClient(name)
	b.setOrgLocked(name, nil)
	b.metrics.forget(name)
	return nil
}

// invalidate runs on nodes that receive replicated writes: drop what they
// cached so that the next read sees the new value.
func (b *backend) invalidate(_ context.Context, storageKey string) {
	name, ok := strings.CutPrefix(storageKey, configPrefix)
	if !ok {
		if name, ok = strings.CutPrefix(storageKey, keyPrefix); !ok {
			return
		}
	}
	b.dropCached(name)
	b.resetClient(name)
}

// errNotConfigured is a caller mistake: no config/<name> exists.
var errNotConfigured = errors.New("not configured")

package backend

import (
	"context"
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

// ensureLoaded reads every organization once per backend instance.
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
			return err
		}
	}
	if b.writeSafe() {
		if err := b.recoverOrphanedRotations(ctx, s); err != nil {
			return err
		}
	}
	b.cacheMu.RLock()
	for name, e := range b.cache {
		b.sched.update(name, e, b.now())
	}
	b.cacheMu.RUnlock()
	b.loaded.Store(true)
	return nil
}

// org returns the cached organization, reading storage on a miss. It
// returns (nil, nil) when the organization is not configured.
func (b *backend) org(ctx context.Context, s logical.Storage, name string) (*orgEntry, error) {
	b.cacheMu.RLock()
	e, ok := b.cache[name]
	gen := b.cacheGen
	b.cacheMu.RUnlock()
	if ok {
		return e, nil
	}
	// Take the name's read lock so that no writer changes storage between
	// our read and our cache fill.
	lock := locksutil.LockForKey(b.locks, name)
	lock.RLock()
	defer lock.RUnlock()
	return b.orgFromStorage(ctx, s, name, gen)
}

// orgLocked is org for callers that hold the name's lock.
func (b *backend) orgLocked(ctx context.Context, s logical.Storage, name string) (*orgEntry, error) {
	b.cacheMu.RLock()
	e, ok := b.cache[name]
	gen := b.cacheGen
	b.cacheMu.RUnlock()
	if ok {
		return e, nil
	}
	return b.orgFromStorage(ctx, s, name, gen)
}

func (b *backend) orgFromStorage(ctx context.Context, s logical.Storage, name string, gen uint64) (*orgEntry, error) {
	cfg, err := getConfig(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, nil
	}
	key, err := getKeyState(ctx, s, name)
	if err != nil {
		return nil, err
	}
	e := &orgEntry{config: cfg, key: key}
	b.cacheMu.Lock()
	if b.cacheGen == gen {
		b.cache[name] = e
	}
	b.cacheMu.Unlock()
	return e, nil
}

// setOrg replaces the cached organization (nil removes it) and updates the
// rotation queue. Callers hold the name's lock and have written storage.
func (b *backend) setOrg(name string, e *orgEntry) {
	b.cacheMu.Lock()
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

// invalidate runs on nodes that receive replicated writes: drop what they
// cached so that the next read sees the new value.
func (b *backend) invalidate(_ context.Context, key string) {
	var name string
	switch {
	case strings.HasPrefix(key, configPrefix):
		name = strings.TrimPrefix(key, configPrefix)
	case strings.HasPrefix(key, keyPrefix):
		name = strings.TrimPrefix(key, keyPrefix)
	default:
		return
	}
	b.cacheMu.Lock()
	delete(b.cache, name)
	b.cacheGen++
	b.cacheMu.Unlock()
	b.resetClient(name)
}

// setOrgUnknown drops the cached organization so that the next access
// reads storage again, after a write that may have half-landed.
func (b *backend) setOrgUnknown(name string) {
	b.cacheMu.Lock()
	delete(b.cache, name)
	b.cacheGen++
	b.cacheMu.Unlock()
	b.sched.remove(name)
}

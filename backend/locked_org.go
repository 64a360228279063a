package backend

// An organization whose lock is held: the only way to store or cache its
// config and key.

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/orgcache"
)

// lockedOrg is one organization while its lock is held. Only lockOrg and
// lockName make one, and its methods are the only writers of the
// organization's stored and cached state, so holding the lock is a fact
// the compiler checks: a function that needs it takes a *lockedOrg.
type lockedOrg struct {
	held *orgcache.Held[orgEntry]
	b    *backend
	s    logical.Storage
	name string
	// e is the organization as stored now, nil when it is not configured;
	// set keeps it current.
	e *orgEntry
}

// lockName takes the name's lock without reading the organization: for a
// delete, which must work on an unreadable entry, and for the settling of
// WAL entries while the mount loads. The wait ends with ctx.
func (b *backend) lockName(ctx context.Context, s logical.Storage, name string) (*lockedOrg, error) {
	held, err := b.orgs.Lock(ctx, name)
	if err != nil {
		return nil, err
	}
	return &lockedOrg{held: held, b: b, s: s, name: name}, nil
}

// lockOrg is the prologue of every change to one organization: load the
// mount, take the name's lock, look the organization up (o.e is nil when
// it is not configured). The caller must call o.unlock.
func (b *backend) lockOrg(ctx context.Context, s logical.Storage, name string) (*lockedOrg, error) {
	if err := b.ensureLoaded(ctx, s); err != nil {
		return nil, err
	}
	o, err := b.lockName(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if o.e, err = b.org(ctx, s, name); err != nil {
		o.unlock()
		return nil, err
	}
	return o, nil
}

func (o *lockedOrg) unlock() { o.held.Unlock() }

// set replaces the cached organization (nil removes it) and updates the
// rotation queue, after storage was written.
func (o *lockedOrg) set(e *orgEntry) {
	o.held.Set(e)
	o.e = e
	if e == nil {
		o.b.sched.remove(o.name)
	} else {
		o.b.sched.update(o.name, e, o.b.now())
	}
}

// setKey caches k as the organization's key, with its config.
func (o *lockedOrg) setKey(k *keyState) { o.set(&orgEntry{config: o.e.config, key: k}) }

// afterCheck is the second half of every check whose result is stored
// (verify, probes, re-checks): the check runs first, without the name's
// lock, so that no rotation waits for AWS; then afterCheck takes the lock
// and runs store, which records the result only if the organization still
// serves the checked key. On a node that must not write it does nothing. A
// lock it cannot take is logged as what it could not do, and returned.
func (b *backend) afterCheck(ctx context.Context, s logical.Storage, name, what string, store func(o *lockedOrg)) error {
	if !b.writeSafe() {
		return nil
	}
	o, err := b.lockOrg(ctx, s, name)
	if err != nil {
		b.logger.Warn("could not "+what, "name", name, "error", err)
		return err
	}
	defer o.unlock()
	store(o)
	return nil
}

// putKey writes the key, trying again after waits that double: a key Cisco
// just issued exists only in memory until it lands.
func (o *lockedOrg) putKey(ctx context.Context, k *keyState) error {
	var err error
	wait := o.b.storeRetryWait
	for attempt := 0; attempt < storeAttempts; attempt++ {
		if attempt > 0 {
			if sleepCtx(ctx, wait) != nil {
				break
			}
			wait *= 2
		}
		if err = o.put(ctx, keyPrefix+o.name, k); err == nil {
			return nil
		}
	}
	return err
}

// storeKey writes k and then caches it.
func (o *lockedOrg) storeKey(ctx context.Context, k *keyState) error {
	if err := o.putKey(ctx, k); err != nil {
		return err
	}
	o.setKey(k)
	return nil
}

// putConfig writes the organization's config; the caller caches it.
func (o *lockedOrg) putConfig(ctx context.Context, cfg *orgConfig) error {
	if err := o.put(ctx, configPrefix+o.name, cfg); err != nil {
		return fmt.Errorf("storing config: %w", err)
	}
	return nil
}

// put writes v as JSON under storage key; only the organization's own
// entries are written, and only through its lock.
func (o *lockedOrg) put(ctx context.Context, key string, v interface{}) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return err
	}
	return o.s.Put(ctx, entry)
}

// delete deletes the organization's key, then its WAL entries, then its
// config; no rotation of the name runs while its lock is held. The key
// goes first: until it is gone, its WAL entries may be all that says it is
// dead. The config goes last: a delete that fails half-way leaves an
// organization that is still listed and can be deleted again, never a key
// or WAL entries without their config.
func (o *lockedOrg) delete(ctx context.Context) error {
	b, s, name := o.b, o.s, o.name
	if err := s.Delete(ctx, keyPrefix+name); err != nil {
		return fmt.Errorf("deleting key: %w", err)
	}
	err := b.deleteRotationWALsOf(ctx, s, name)
	if err == nil {
		if err = s.Delete(ctx, configPrefix+name); err != nil {
			err = fmt.Errorf("deleting config: %w", err)
		}
	}
	if err != nil {
		// The delete half-landed: read storage again next time, and let the
		// tick drop WAL entries left behind, which guard no key now.
		b.orgs.Drop(name)
		b.sched.remove(name)
		b.walPending.Store(true)
		return err
	}
	b.resetClient(name)
	o.set(nil)
	b.metrics.forget(name)
	return nil
}

// adoptNewerStoredKey caches the stored key when it is newer than the
// cached one: another instance on the same storage stored it. The cache
// otherwise stands: it may hold a failure that storage refused, which a
// read of storage must not undo.
func (o *lockedOrg) adoptNewerStoredKey(ctx context.Context) error {
	stored, err := getKey(ctx, o.s, o.name)
	if err != nil {
		return err
	}
	if !stored.NewerThan(o.e.key) {
		return nil
	}
	o.b.logger.Info("storage holds a newer key than this node cached; serving it", "name", o.name, "version", stored.Version())
	o.setKey(stored)
	return nil
}

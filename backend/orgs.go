package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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

// ensureSettled settles the rotations that a crash left unfinished, once
// per backend instance, reading only the organizations they name. A path
// that serves or checks one organization waits for this, not for the whole
// load: until the WAL is settled a cached key may be dead, but after it one
// organization is read on its own at its first use.
func (b *backend) ensureSettled(ctx context.Context, s logical.Storage) error {
	if b.settled.Load() {
		return nil
	}
	if err := b.settleMu.lock(ctx); err != nil {
		return err
	}
	defer b.settleMu.unlock()
	if b.settled.Load() {
		return nil
	}
	if b.writeSafe() {
		if err := b.recoverOrphanedRotations(ctx, s); err != nil {
			return err
		}
	} else {
		// A node that may not write settles nothing; should this instance
		// become writable, its first tick settles the WAL.
		b.walPending.Store(true)
	}
	b.settled.Store(true)
	return nil
}

// ensureLoaded settles the WAL and reads every organization once per
// backend instance, then builds the rotation queue. Lists, status, metrics,
// config writes (which compare every organization) and the tick wait for
// it.
func (b *backend) ensureLoaded(ctx context.Context, s logical.Storage) error {
	if b.loaded.Load() {
		return nil
	}
	if err := b.loadMu.lock(ctx); err != nil {
		return err
	}
	defer b.loadMu.unlock()
	if b.loaded.Load() {
		return nil
	}
	began, counted := time.Now(), countReads(s)
	s = counted
	if err := b.ensureSettled(ctx, s); err != nil {
		return err
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
	now := b.now()
	for _, name := range names {
		if e, _ := b.cached(name); e != nil {
			b.sched.update(name, e, now)
		}
	}
	b.loaded.Store(true)
	b.logger.Info("loaded the organizations", "organizations", len(names),
		"duration", time.Since(began).Round(time.Millisecond).String(), "storage_reads", counted.reads.Load())
	return nil
}

// cached is the one read of the cache: the organization (nil on a miss)
// and the generation to pass to a fill.
func (b *backend) cached(name string) (*orgEntry, uint64) {
	return b.orgs.Get(name)
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
		if cfg != nil {
			e = &orgEntry{config: cfg, key: key}
		}
		if b.orgs.Fill(name, gen, e) || attempt >= 3 {
			return e, nil
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
	b.orgs.NoteUnreadable(name, gen, bad.Error())
	return fmt.Errorf("organization %q: %w; delete config/%s, then write it again", name, err, name)
}

// unreadableOrgs returns the names whose stored entry does not decode,
// sorted, with the reason.
func (b *backend) unreadableOrgs() (names []string, reasons map[string]string) {
	return b.orgs.Unreadable()
}

// configuredOrg settles the WAL and looks name up without its lock, reading
// it alone if the mount is not loaded yet. A name that is not configured
// gives the 400 that says so.
func (b *backend) configuredOrg(ctx context.Context, s logical.Storage, name string) (*orgEntry, *logical.Response, error) {
	if err := b.ensureSettled(ctx, s); err != nil {
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

// refillDropped reads every dropped organization again and reschedules it.
// With nothing dropped it touches no storage.
func (b *backend) refillDropped(ctx context.Context, s logical.Storage) {
	b.orgs.Refill(func(name string) (*orgEntry, error) {
		// Unreadable (flagged) or storage failing: next time.
		return b.org(ctx, s, name)
	}, func(name string, e *orgEntry) {
		if e == nil {
			b.sched.remove(name)
		} else {
			b.sched.update(name, e, b.now())
		}
	})
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
	b.orgs.Drop(name)
	b.resetClient(name)
}

// errNotConfigured is a caller mistake: no config/<name> exists.
var errNotConfigured = errors.New("not configured")

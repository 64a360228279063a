// Package orgcache holds one mount's organizations in memory, by name,
// with a lock per name. An entry can be replaced only through Held, which
// only Lock gives out: code that stores or caches an organization without
// holding its lock does not compile. It knows nothing of Vault.
package orgcache

import (
	"context"
	"hash/fnv"
	"sort"
	"sync"
)

// stripes is how many locks the names share; two names on one stripe only
// wait for each other.
const stripes = 256

// Cache is the entries of a mount, the names whose stored entry does not
// decode, and the names dropped from it that a refill must read again.
// Entries are immutable: writers replace them whole.
type Cache[T any] struct {
	// locks are the name locks, a one-slot channel each, so that a wait
	// can end with its caller's context.
	locks [stripes]chan struct{}

	mu      sync.RWMutex
	entries map[string]*T
	// gen grows on every write and drop, so that a fill that read storage
	// before one does not put an outdated entry back.
	gen uint64
	// unreadable maps a name whose stored entry does not decode to why.
	unreadable map[string]string
	// dropped holds names that left the cache by a drop: Refill reads them
	// again, so that none falls out of the schedule or the alerts.
	dropped map[string]struct{}
}

// New returns an empty cache.
func New[T any]() *Cache[T] {
	c := &Cache[T]{
		entries:    make(map[string]*T),
		unreadable: make(map[string]string),
		dropped:    make(map[string]struct{}),
	}
	for i := range c.locks {
		c.locks[i] = make(chan struct{}, 1)
	}
	return c
}

// Get is the one read of the cache: the entry (nil on a miss) and the
// generation to pass to Fill.
func (c *Cache[T]) Get(name string) (*T, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[name], c.gen
}

// Fill caches e, read from storage while the generation was gen, unless a
// write or drop came since; e nil caches nothing. It reports whether the
// read stands, and clears the name's unreadable note when it does.
func (c *Cache[T]) Fill(name string, gen uint64, e *T) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return false
	}
	if e != nil {
		c.entries[name] = e
	}
	delete(c.unreadable, name)
	return true
}

// NoteUnreadable flags a name whose stored entry does not decode, unless a
// write since gen may have replaced the entry.
func (c *Cache[T]) NoteUnreadable(name string, gen uint64, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.unreadable[name] = reason
	}
}

// Unreadable returns the flagged names, sorted, with their reasons.
func (c *Cache[T]) Unreadable() (names []string, reasons map[string]string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	reasons = make(map[string]string, len(c.unreadable))
	for name, reason := range c.unreadable {
		names = append(names, name)
		reasons[name] = reason
	}
	sort.Strings(names)
	return names, reasons
}

// Snapshot returns every cached entry by name.
func (c *Cache[T]) Snapshot() map[string]*T {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]*T, len(c.entries))
	for name, e := range c.entries {
		out[name] = e
	}
	return out
}

// Range calls fn with every cached entry until fn returns false, under the
// cache's read lock and without copying: fn must not call the cache.
func (c *Cache[T]) Range(fn func(name string, e *T) bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for name, e := range c.entries {
		if !fn(name, e) {
			return
		}
	}
}

// Drop forgets the name's entry, so that the next read goes to storage,
// and marks it for Refill. Dropping stores nothing, so it needs no lock.
func (c *Cache[T]) Drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, name)
	c.dropped[name] = struct{}{}
	c.gen++
}

// MarkDropped marks a name that has no entry for Refill.
func (c *Cache[T]) MarkDropped(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[name] == nil {
		c.dropped[name] = struct{}{}
	}
}

// Refill reads every dropped name again with read, which fills the cache,
// and calls settled with what it read once no drop raced the read. A name
// whose read fails stays dropped for the next Refill. With nothing dropped
// it calls nothing.
func (c *Cache[T]) Refill(read func(name string) (*T, error), settled func(name string, e *T)) {
	c.mu.RLock()
	names := make([]string, 0, len(c.dropped))
	for name := range c.dropped {
		names = append(names, name)
	}
	c.mu.RUnlock()
	for _, name := range names {
		e, err := read(name)
		if err != nil {
			continue
		}
		c.mu.Lock()
		// A drop since the read keeps the mark.
		ok := c.entries[name] == e
		if ok {
			delete(c.dropped, name)
		}
		c.mu.Unlock()
		if ok {
			settled(name, e)
		}
	}
}

// Lock waits for the name's lock. It gives up when ctx ends first.
func (c *Cache[T]) Lock(ctx context.Context, name string) (*Held[T], error) {
	lock := c.locks[stripe(name)]
	select {
	case lock <- struct{}{}:
		return &Held[T]{c: c, name: name, lock: lock}, nil
	default:
	}
	select {
	case lock <- struct{}{}:
		return &Held[T]{c: c, name: name, lock: lock}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func stripe(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % stripes)
}

// Held is a name's lock, held. Its methods are the only way to replace
// the name's entry.
type Held[T any] struct {
	c    *Cache[T]
	name string
	lock chan struct{}
}

// Name is the name whose lock this is.
func (h *Held[T]) Name() string { return h.name }

// Set replaces the name's entry, after storage was written; nil removes it.
func (h *Held[T]) Set(e *T) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.unreadable, h.name)
	delete(c.dropped, h.name)
	if e == nil {
		delete(c.entries, h.name)
	} else {
		c.entries[h.name] = e
	}
}

// Unlock releases the lock; the Held must not be used after it.
func (h *Held[T]) Unlock() { <-h.lock }

package backend

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

const (
	// maxCiscoCalls bounds the Cisco calls one tick makes at once.
	maxCiscoCalls = 4
	// tickBudget leaves room in Vault's 90 s request limit for the periodic call.
	tickBudget = 50 * time.Second
	// warnEvery is how often the scheduler logs an approaching lockout.
	warnEvery = time.Hour
)

// scheduler keeps every organization in a min-heap by the time it next
// needs attention, so an idle tick is one peek.
type scheduler struct {
	b *backend

	mu     sync.Mutex
	queue  rotationQueue
	items  map[string]*queueItem
	warned map[string]time.Time

	apiKeysMu sync.Mutex
	apiKeys   map[string]*apiKeyState
	// limits are the rate limits kept per API key.
	limits []rateLimit

	ticking atomic.Bool
}

func newScheduler(b *backend) *scheduler {
	return &scheduler{
		b:       b,
		items:   make(map[string]*queueItem),
		warned:  make(map[string]time.Time),
		apiKeys: make(map[string]*apiKeyState),
		limits:  ciscoAdminLimits,
	}
}

// periodic is Vault's periodic call, about once a minute. Only the active
// node of the primary cluster rotates.
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	if !b.writeSafe() {
		return nil
	}
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return err
	}
	if b.walPending.Swap(false) {
		if err := b.recoverOrphanedRotations(ctx, req.Storage); err != nil {
			b.walPending.Store(true)
			b.logger.Warn("could not settle the rotation WAL yet", "error", err)
		}
	}
	b.sched.tick(ctx, req.Storage)
	return nil
}

// tick rotates every due organization, at most maxCiscoCalls at once and
// one at a time per API key. An idle tick touches no storage.
func (s *scheduler) tick(ctx context.Context, st logical.Storage) {
	if !s.ticking.CompareAndSwap(false, true) {
		return
	}
	defer s.ticking.Store(false)

	b := s.b
	now := b.now()
	due := s.popDue(now)
	if len(due) == 0 {
		return
	}
	deadline := time.Now().Add(tickBudget)
	if d, ok := ctx.Deadline(); ok && d.Add(-10*time.Second).Before(deadline) {
		deadline = d.Add(-10 * time.Second)
	}

	groups := make(map[string][]string)
	var order []string
	for _, name := range due {
		b.cacheMu.RLock()
		e := b.cache[name]
		b.cacheMu.RUnlock()
		if e == nil {
			continue
		}
		s.warnDeadline(name, e, now)
		if at, ok := nextRotation(e.config, e.key, now); ok && !at.After(now) {
			key := e.config.apiKey()
			if _, seen := groups[key]; !seen {
				order = append(order, key)
			}
			groups[key] = append(groups[key], name)
			continue
		}
		s.update(name, e, now)
	}

	work := make(chan []string)
	var wg sync.WaitGroup
	for i := 0; i < maxCiscoCalls && i < len(order); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for names := range work {
				for _, name := range names {
					if time.Now().Before(deadline) {
						s.rotateDue(ctx, st, name, deadline)
					}
					// Requeue from the latest state, whatever happened.
					s.requeue(name)
				}
			}
		}()
	}
	for _, key := range order {
		work <- groups[key]
	}
	close(work)
	wg.Wait()
}

func (s *scheduler) rotateDue(ctx context.Context, st logical.Storage, name string, deadline time.Time) {
	b := s.b
	trigger := triggerScheduled
	b.cacheMu.RLock()
	if e := b.cache[name]; e != nil && e.key != nil && e.key.Stale {
		trigger = triggerRecovery
	}
	b.cacheMu.RUnlock()
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if _, err := b.rotate(rctx, st, name, trigger); err != nil {
		var rl *rateLimitedError
		if errors.As(err, &rl) || errors.Is(err, context.DeadlineExceeded) {
			b.logger.Debug("rotation postponed", "name", name, "reason", err.Error())
		}
	}
}

func (s *scheduler) requeue(name string) {
	b := s.b
	b.cacheMu.RLock()
	e := b.cache[name]
	b.cacheMu.RUnlock()
	if e != nil {
		s.update(name, e, b.now())
	}
}

// warnDeadline logs at ERROR, once an hour, that a key nears Cisco's lockout.
func (s *scheduler) warnDeadline(name string, e *orgEntry, now time.Time) {
	if !inDeadlineZone(e.key, now) {
		return
	}
	s.mu.Lock()
	last, ok := s.warned[name]
	if ok && now.Before(last.Add(warnEvery)) {
		s.mu.Unlock()
		return
	}
	s.warned[name] = now
	s.mu.Unlock()
	s.b.logger.Error("S3 bucket key nears Cisco's 90-day lockout", "name", name, "access_key_id", e.key.AccessKeyID,
		"expires_at", e.key.expiresAt().Format(time.RFC3339), "last_rotation_error", e.key.LastError)
}

package backend

// The periodic tick: what is due, rotated at most maxCiscoCalls at once and
// one at a time per API key, and the hourly deadline log lines.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/cisco"
)

const (
	// maxCiscoCalls bounds the Cisco calls one tick makes at once.
	maxCiscoCalls = 4
	// tickBudget bounds the time in which a tick starts rotations. Vault
	// cancels the periodic call after its max request duration (90 s unless
	// default_max_request_duration says otherwise) and holds its state
	// lock's read side for the whole call.
	tickBudget = 50 * time.Second
	// tickDeadlineMargin is kept free before the deadline of Vault's call.
	tickDeadlineMargin = 10 * time.Second
	// warnEvery is how often the scheduler logs an approaching lockout.
	warnEvery = time.Hour
)

// scheduler keeps every organization in the rotation queue by the time it
// next needs attention: a rotation, a re-check of a lifted stale mark or a
// deadline log line.
type scheduler struct {
	b *backend

	// mu guards queue and warned.
	mu     sync.Mutex
	queue  rotationQueue
	warned map[string]time.Time

	// budget is tickBudget; tests shorten it.
	budget time.Duration

	ticking atomic.Bool
	// ticked is set by this instance's first tick.
	ticked atomic.Bool
}

// logNearsLockout starts the ERROR line of a key within deadlineWarning of
// Cisco's lockout; docs/operations.md quotes it.
const logNearsLockout = "S3 bucket key nears Cisco's 90-day lockout"

func newScheduler(b *backend) *scheduler {
	return &scheduler{b: b, queue: newRotationQueue(), warned: make(map[string]time.Time), budget: tickBudget}
}

// nextAction is when an organization next needs the scheduler: a
// rotation, a check of its key or a deadline log line. The caller holds
// s.mu.
func (s *scheduler) nextAction(name string, e *orgEntry, now time.Time) (time.Time, bool) {
	f := e.config.facts()
	at, ok := bucketkey.NextRotation(e.key, f, now)
	if check, due := bucketkey.NextCheck(name, e.key, f); due && (!ok || check.Before(at)) {
		at, ok = check, true
	}
	if k := e.key; k.HasKey() {
		warnAt := k.ExpiresAt().Add(-deadlineWarning)
		if last, warned := s.warned[name]; warned && !last.Before(warnAt) {
			warnAt = last.Add(warnEvery)
		}
		if !ok || warnAt.Before(at) {
			at, ok = warnAt, true
		}
	}
	return at, ok
}

// update reschedules one organization from its entry.
func (s *scheduler) update(name string, e *orgEntry, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.nextAction(name, e, now); ok {
		s.queue.set(name, at)
	} else {
		s.queue.remove(name)
	}
}

func (s *scheduler) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue.remove(name)
	delete(s.warned, name)
}

func (s *scheduler) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = newRotationQueue()
	s.warned = make(map[string]time.Time)
}

func (s *scheduler) popDue(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.popDue(now)
}

// periodic is Vault's periodic call, about once a minute. Only the active
// node of the primary cluster rotates.
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	if !b.writeSafe() {
		return nil
	}
	began, st := time.Now(), countReads(req.Storage)
	if err := b.ensureLoaded(ctx, st); err != nil {
		return err
	}
	if b.walPending.Swap(false) {
		if err := b.recoverOrphanedRotations(ctx, st); err != nil {
			b.walPending.Store(true)
			b.logger.Warn("could not settle the rotation WAL yet", "error", err)
		}
	}
	b.refillDropped(ctx, st)
	n := b.sched.tick(ctx, st)
	// The first tick of a node that just became active is the one that
	// may pay for the load: say what it cost.
	if first := b.sched.ticked.CompareAndSwap(false, true); first || n > 0 {
		b.logger.Debug("tick finished", "first", first, "due", n,
			"duration", time.Since(began).Round(time.Millisecond).String(), "storage_reads", st.reads.Load())
	}
	return nil
}

// tick rotates every due organization, at most maxCiscoCalls at once and
// one at a time per API key, after the due checks of served keys, which
// run in the background. An idle tick touches no storage. It returns how
// many organizations were due.
func (s *scheduler) tick(ctx context.Context, st logical.Storage) int {
	if !s.ticking.CompareAndSwap(false, true) {
		return 0
	}
	defer s.ticking.Store(false)

	b := s.b
	now := b.now()
	due := s.popDue(now)
	if len(due) == 0 {
		return 0
	}
	// A rotation starts only if it can finish within the budget: the wait
	// for its API key's turn ends a Cisco call's length before the budget
	// does, and a started call is never cut short.
	end := time.Now().Add(s.budget)
	if d, ok := ctx.Deadline(); ok && d.Add(-tickDeadlineMargin).Before(end) {
		end = d.Add(-tickDeadlineMargin)
	}
	startBy, cancel := context.WithDeadline(ctx, end.Add(-b.ciscoCallTimeout()))
	defer cancel()

	rotations := s.sortDue(startBy, st, due, now)

	groups := make(map[string][]string)
	var order []string
	for _, name := range rotations {
		e, _ := b.cached(name)
		if e == nil {
			b.orgs.MarkDropped(name)
			continue
		}
		key := e.config.apiKey()
		if _, seen := groups[key]; !seen {
			order = append(order, key)
		}
		groups[key] = append(groups[key], name)
	}

	work := make(chan []string)
	var wg sync.WaitGroup
	for i := 0; i < maxCiscoCalls && i < len(order); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for names := range work {
				for _, name := range names {
					if startBy.Err() == nil {
						s.rotateDue(startBy, st, name)
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
	return len(due)
}

// sortDue starts the due checks in the background and returns the names
// whose rotation is due; the others are requeued. It waits for the checks
// it started, so that a key they find dead is healed in this tick; one
// they mark stale again is recovered at the next tick, as any stale key
// is.
func (s *scheduler) sortDue(ctx context.Context, st logical.Storage, due []string, now time.Time) []string {
	b := s.b
	var rotations, requeue []string
	rotating := make(map[string]bool)
	var checks []<-chan struct{}
	for _, name := range due {
		e, _ := b.cached(name)
		if e == nil {
			// Dropped since the refill: the next tick reads and requeues it.
			b.orgs.MarkDropped(name)
			continue
		}
		s.warnDeadline(name, e, now)
		// Checks run even when a rotation is due: one that keeps failing
		// (a revoked API key) must not leave a dead key unwatched.
		f := e.config.facts()
		if at, ok := bucketkey.NextCheck(name, e.key, f); ok && !at.After(now) && len(checks) < maxChecksPerTick {
			if done, started := b.startCheck(st, name, e.key); started {
				checks = append(checks, done)
			}
		}
		if at, ok := bucketkey.NextRotation(e.key, f, now); ok && !at.After(now) {
			rotations, rotating[name] = append(rotations, name), true
			continue
		}
		requeue = append(requeue, name)
	}
	if len(checks) > 0 {
		s.awaitChecks(ctx, checks)
		for _, name := range s.popDue(b.now()) {
			if e, _ := b.cached(name); e != nil && !rotating[name] {
				if at, ok := bucketkey.HealDue(e.key, e.config.facts()); ok && !at.After(b.now()) {
					rotations, rotating[name] = append(rotations, name), true
					continue
				}
			}
			requeue = append(requeue, name)
		}
	}
	// Requeue from the latest state: a check may have recorded already.
	for _, name := range requeue {
		s.requeue(name)
	}
	return rotations
}

// awaitChecks waits for the checks a tick started, at most tickCheckWait
// and never past ctx.
func (s *scheduler) awaitChecks(ctx context.Context, checks []<-chan struct{}) {
	timer := time.NewTimer(tickCheckWait)
	defer timer.Stop()
	for _, done := range checks {
		select {
		case <-done:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (s *scheduler) rotateDue(ctx context.Context, st logical.Storage, name string) {
	b := s.b
	trigger := triggerScheduled
	if e, _ := b.cached(name); e != nil && e.key != nil {
		if e.key.Stale() {
			trigger = triggerRecovery
		} else if _, ok := bucketkey.HealDue(e.key, e.config.facts()); ok {
			trigger = triggerHeal
		} else if !e.key.GracefulAt().IsZero() {
			trigger = triggerGraceful
		}
	}
	// Failures are recorded and logged by the rotation; what is left here
	// is a rotation that did not start.
	if _, err := b.rotate(ctx, st, name, trigger); err != nil {
		var rl *cisco.RateLimitedError
		if errors.As(err, &rl) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errNotDue) {
			b.logger.Debug("rotation postponed", "name", name, "reason", err.Error())
		}
	}
}

func (s *scheduler) requeue(name string) {
	if e, _ := s.b.cached(name); e != nil {
		s.update(name, e, s.b.now())
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
	s.b.logger.Error(logNearsLockout, "name", name, "access_key_id", e.key.AccessKeyID(),
		"expires_at", e.key.ExpiresAt().Format(time.RFC3339), "last_rotation_error", e.key.LastError())
}

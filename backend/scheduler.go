package backend

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
	"github.com/robfig/cron/v3"
)

const (
	// maxCiscoCalls bounds the Cisco calls one tick makes at once.
	maxCiscoCalls = 4
	// tickBudget leaves room in Vault's 90 s request limit for the periodic call.
	tickBudget = 50 * time.Second
	// deadlineWarning is how long before Cisco's lockout reads warn.
	deadlineWarning = 14 * 24 * time.Hour
	// warnEvery is how often the scheduler logs an approaching lockout.
	warnEvery = time.Hour

	minRetryBackoff = time.Minute
	maxRetryBackoff = time.Hour
)

// rateLimit is one of Cisco's per-API-key limits: calls per window.
type rateLimit struct {
	window time.Duration
	calls  int
}

// rateLimitMargin pads every window of Cisco's limits.
const rateLimitMargin = 250 * time.Millisecond

// ciscoAdminLimits are Cisco's documented admin API limits per API key.
var ciscoAdminLimits = []rateLimit{{time.Second, 5}, {time.Minute, 14}, {30 * time.Minute, 350}}

// parseRotationSchedule parses a 5-field cron schedule in UTC and rejects
// one that can leave a key unrotated for more than 89 days.
func parseRotationSchedule(s string) (*cron.SpecSchedule, error) {
	sched, err := rotation.DefaultScheduler.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("rotation_schedule %q is not a 5-field cron expression (minute hour day-of-month month day-of-week, UTC), e.g. \"0 3 1 * *\": %v", truncate(s, 60), err)
	}
	if gap := maxScheduleGap(sched, time.Now().UTC()); gap > maxRotationGap {
		return nil, fmt.Errorf("rotation_schedule %q can leave %s between two rotations: Cisco locks the organization out "+
			"when a key is 90 days old, so runs must be at most 89 days apart (monthly, e.g. \"0 3 1 * *\", is fine)", truncate(s, 60), describeGap(gap))
	}
	return sched, nil
}

func describeGap(d time.Duration) string {
	if d == maxDuration {
		return "more than 5 years"
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

const maxDuration = time.Duration(1<<63 - 1)

// maxScheduleGap returns the longest time between two runs in the five years
// after from. Within a day a cron schedule fires at the same times of day in
// UTC, so it steps from one firing day to the next.
func maxScheduleGap(s *cron.SpecSchedule, from time.Time) time.Duration {
	const starBit = 1 << 63
	lastOfDay := time.Duration(63-bits.LeadingZeros64(s.Hour&^starBit))*time.Hour +
		time.Duration(63-bits.LeadingZeros64(s.Minute&^starBit))*time.Minute
	horizon := from.AddDate(5, 0, 0)
	var gap time.Duration
	var lastRun time.Time
	t := from
	for {
		next := s.Next(t)
		if next.IsZero() {
			return maxDuration
		}
		if !lastRun.IsZero() && next.Sub(lastRun) > gap {
			gap = next.Sub(lastRun)
		}
		if next.After(horizon) {
			return gap
		}
		lastRun = next.Truncate(24 * time.Hour).Add(lastOfDay)
		t = lastRun
	}
}

// nextRotation is when the organization's key is due. It reports false
// when nothing is scheduled: automated rotation is off or no key is stored.
func nextRotation(cfg *orgConfig, k *keyState, now time.Time) (time.Time, bool) {
	if cfg.DisableAutomatedRotation || k == nil || (!k.hasKey() && !k.Stale) {
		return time.Time{}, false
	}
	if !k.RetryAt.IsZero() {
		return k.RetryAt, true
	}
	base := k.issuedAt()
	var due time.Time
	if cfg.RotationSchedule != "" {
		// An unparsable stored schedule leaves due zero: the 89-day limit.
		if sched := cfg.schedule(); sched != nil {
			due = sched.Next(base)
		}
		if sched := cfg.schedule(); sched != nil && cfg.RotationWindow > 0 && !due.Add(cfg.RotationWindow).After(now) {
			// The run's window closed: wait for the next run whose window is
			// still open.
			due = sched.Next(now.Add(-cfg.RotationWindow))
		}
	} else {
		due = base.Add(cfg.RotationPeriod)
	}
	// Never later than 89 days into the key's life, whatever the settings.
	if limit := base.Add(maxRotationGap); due.IsZero() || due.After(limit) {
		due = limit
	}
	return due, true
}

// effectivePeriod is the rotation period, or with a schedule the time
// between its next two runs.
func effectivePeriod(cfg *orgConfig, now time.Time) time.Duration {
	if sched := cfg.schedule(); sched != nil {
		first := sched.Next(now)
		return sched.Next(first).Sub(first)
	}
	return cfg.RotationPeriod
}

// retryBackoff is the wait before retry n (1-based): 1 min doubling to 1 h,
// plus up to 25% jitter, never above 1 h.
func retryBackoff(n int) time.Duration {
	d := minRetryBackoff
	for i := 1; i < n && d < maxRetryBackoff; i++ {
		d *= 2
	}
	d += time.Duration(rand.Int64N(int64(d / 4)))
	if d > maxRetryBackoff {
		d = maxRetryBackoff
	}
	return d
}

// inDeadlineZone reports that the key is within 14 days of Cisco's lockout.
func inDeadlineZone(k *keyState, now time.Time) bool {
	return k.hasKey() && !now.Before(k.expiresAt().Add(-deadlineWarning))
}

func deadlineMessage(k *keyState, now time.Time) string {
	exp := k.expiresAt()
	if !now.Before(exp) {
		return fmt.Sprintf("the served key %s passed Cisco's 90-day lockout at %s: the organization has lost access "+
			"to its bucket; refresh the key in Cisco's dashboard and import it, or rotate now", k.AccessKeyID, exp.Format(time.RFC3339))
	}
	return fmt.Sprintf("the served key %s reaches Cisco's 90-day lockout at %s (in %s) and has not been rotated: "+
		"check last_rotation_error on the config and rotate now", k.AccessKeyID, exp.Format(time.RFC3339), exp.Sub(now).Truncate(time.Minute))
}

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

type queueItem struct {
	name  string
	at    time.Time
	index int
}

type rotationQueue []*queueItem

func (q rotationQueue) Len() int           { return len(q) }
func (q rotationQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q rotationQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *rotationQueue) Push(x any) {
	it := x.(*queueItem)
	it.index = len(*q)
	*q = append(*q, it)
}
func (q *rotationQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return it
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

// nextAction is when an organization next needs the scheduler: a rotation
// or a deadline log line.
func (s *scheduler) nextAction(name string, e *orgEntry, now time.Time) (time.Time, bool) {
	at, ok := nextRotation(e.config, e.key, now)
	if k := e.key; k.hasKey() {
		warnAt := k.expiresAt().Add(-deadlineWarning)
		if last, warned := s.warned[name]; warned && !last.Before(warnAt) {
			warnAt = last.Add(warnEvery)
		}
		if !ok || warnAt.Before(at) {
			at, ok = warnAt, true
		}
	}
	return at, ok
}

// update reschedules one organization from its cached entry.
func (s *scheduler) update(name string, e *orgEntry, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.nextAction(name, e, now)
	it, queued := s.items[name]
	switch {
	case !ok && queued:
		heap.Remove(&s.queue, it.index)
		delete(s.items, name)
	case !ok:
	case queued:
		it.at = at
		heap.Fix(&s.queue, it.index)
	default:
		it = &queueItem{name: name, at: at}
		heap.Push(&s.queue, it)
		s.items[name] = it
	}
}

func (s *scheduler) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.items[name]; ok {
		heap.Remove(&s.queue, it.index)
		delete(s.items, name)
	}
	delete(s.warned, name)
}

func (s *scheduler) reset() {
	s.mu.Lock()
	s.queue = nil
	s.items = make(map[string]*queueItem)
	s.warned = make(map[string]time.Time)
	s.mu.Unlock()
}

// nextDue returns the earliest queued time, for tests and status.
func (s *scheduler) nextDue() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return time.Time{}, false
	}
	return s.queue[0].at, true
}

// popDue removes and returns the organizations whose time has come.
func (s *scheduler) popDue(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []string
	for len(s.queue) > 0 && !s.queue[0].at.After(now) {
		it := heap.Pop(&s.queue).(*queueItem)
		delete(s.items, it.name)
		due = append(due, it.name)
	}
	return due
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

// apiKeyState serializes the calls of one Cisco API key and remembers
// their times for Cisco's rate limits.
type apiKeyState struct {
	turn  chan struct{}
	mu    sync.Mutex
	calls []time.Time
}

// errAPIKeyBusy means another call of the same API key held its turn too long.
var errAPIKeyBusy = errors.New("another call of the same Cisco API key is still running; try again shortly")

// rateLimitedError means Cisco's documented limits forbid a call now.
type rateLimitedError struct{ wait time.Duration }

func (e *rateLimitedError) Error() string {
	return fmt.Sprintf("Cisco's rate limit for this API key allows the next call in %s; try again then", e.wait.Round(time.Second))
}

// acquireAPIKey waits for the API key's turn and for its rate limits.
// The caller must call release after its Cisco call.
func (s *scheduler) acquireAPIKey(ctx context.Context, apiKey string) (release func(), err error) {
	s.apiKeysMu.Lock()
	ks, ok := s.apiKeys[apiKey]
	if !ok {
		ks = &apiKeyState{turn: make(chan struct{}, 1)}
		s.apiKeys[apiKey] = ks
	}
	s.apiKeysMu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, ciscoCallTimeout)
	defer cancel()
	select {
	case ks.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, errAPIKeyBusy
	}
	release = func() { <-ks.turn }
	wait := ks.wait(time.Now(), s.limits)
	if wait > 0 {
		if d, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(d) {
			release()
			return nil, &rateLimitedError{wait: wait}
		}
		if err := sleepCtx(ctx, wait); err != nil {
			release()
			return nil, &rateLimitedError{wait: wait}
		}
	}
	ks.record(time.Now(), s.limits)
	return release, nil
}

// wait returns how long until a call fits every window.
func (ks *apiKeyState) wait(now time.Time, limits []rateLimit) time.Duration {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var wait time.Duration
	for _, l := range limits {
		if len(ks.calls) < l.calls {
			continue
		}
		// The call l.calls back must have left the window. The margin
		// covers the token fetch and transit between our record and Cisco's.
		oldest := ks.calls[len(ks.calls)-l.calls]
		if w := oldest.Add(l.window + rateLimitMargin).Sub(now); w > wait {
			wait = w
		}
	}
	return wait
}

func (ks *apiKeyState) record(now time.Time, limits []rateLimit) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if len(limits) == 0 {
		return
	}
	// Forget calls older than the longest window.
	horizon := now.Add(-limits[len(limits)-1].window)
	i := 0
	for i < len(ks.calls) && ks.calls[i].Before(horizon) {
		i++
	}
	ks.calls = append(ks.calls[i:], now)
}

// recoverOrphanedRotations resolves WAL entries that no running rotation
// owns: the outcome of those rotations is unknown, so their keys are marked
// stale and rotated as soon as possible. The framework's own rollback lists
// wal/ on every tick; running this at load and from WALRollback keeps an
// idle tick free of storage reads.
func (b *backend) recoverOrphanedRotations(ctx context.Context, s logical.Storage) error {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return fmt.Errorf("listing the rotation WAL: %w", err)
	}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			return fmt.Errorf("reading the rotation WAL: %w", err)
		}
		if entry == nil || entry.Kind != walKindRotate {
			continue
		}
		if err := b.walRollback(ctx, &logical.Request{Storage: s}, entry.Kind, entry.Data); err != nil {
			return err
		}
		if err := framework.DeleteWAL(ctx, s, id); err != nil {
			return fmt.Errorf("deleting the rotation WAL: %w", err)
		}
	}
	return nil
}

// walRollback handles one orphaned rotation WAL entry.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	if kind != walKindRotate {
		return nil
	}
	var w rotationWAL
	if err := mapToStruct(data, &w); err != nil || w.Name == "" {
		b.logger.Warn("dropping an unreadable rotation WAL entry")
		return nil
	}
	b.inflightMu.Lock()
	_, running := b.inflight[w.Name]
	b.inflightMu.Unlock()
	if running {
		// A running rotation will settle the key either way.
		return nil
	}
	lock := locksutil.LockForKey(b.locks, w.Name)
	lock.Lock()
	defer lock.Unlock()
	e, err := b.orgLocked(ctx, req.Storage, w.Name)
	if err != nil {
		return err
	}
	if e == nil || (e.key != nil && e.key.Version > w.Version) {
		return nil // deleted since, or the rotation did finish
	}
	now := b.now()
	failed := keyState{}
	if e.key != nil {
		failed = *e.key
	}
	failed.markFailed(fmt.Sprintf("a rotation started at %s did not finish (Vault stopped or storage failed): "+
		"Cisco may have replaced the key", w.Started.UTC().Format(time.RFC3339)), now, true, true)
	failed.RetryAt = now // as soon as possible
	if err := b.storeKey(ctx, req.Storage, w.Name, &failed); err != nil {
		return fmt.Errorf("marking the key of %q stale: %w", w.Name, err)
	}
	b.setOrg(w.Name, &orgEntry{config: e.config, key: &failed})
	b.logger.Error("found an unfinished rotation: the served key may be dead, rotating as soon as possible",
		"name", w.Name, "started", w.Started.UTC().Format(time.RFC3339))
	return nil
}

// mapToStruct decodes a WAL entry's data, which arrives as a generic map.
func mapToStruct(in interface{}, out interface{}) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

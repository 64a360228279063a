package cisco

// The per-API-key limiter: one Cisco call at a time per API key, manual or
// scheduled, within Cisco's documented rate limits.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// RateLimit is one of Cisco's per-API-key limits: calls per window.
type RateLimit struct {
	Window time.Duration
	Calls  int
}

// rateLimitMargin pads every window of Cisco's limits.
const rateLimitMargin = 250 * time.Millisecond

// AdminLimits are Cisco's documented admin API limits per API key.
var AdminLimits = []RateLimit{{time.Second, 5}, {time.Minute, 14}, {30 * time.Minute, 350}}

// apiKeyState serializes the calls of one Cisco API key and remembers
// their times for Cisco's rate limits.
type apiKeyState struct {
	turn  chan struct{}
	mu    sync.Mutex
	calls []time.Time
}

// ErrAPIKeyBusy means another call of the same API key held its turn too long.
var ErrAPIKeyBusy = errors.New("another call of the same Cisco API key is still running; try again shortly")

// RateLimitedError means Cisco's documented limits forbid a call now.
type RateLimitedError struct {
	// Wait is how long until the limits allow the call.
	Wait time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("Cisco's rate limit for this API key allows the next call in %s; try again then", e.Wait.Round(time.Second))
}

// Limiter holds the turn and the recent calls of every API key.
type Limiter struct {
	mu   sync.Mutex
	keys map[string]*apiKeyState
	// limits are the rate limits kept per API key.
	limits []RateLimit
	// turnTimeout is how long a call waits for its API key's turn before
	// the key counts as busy.
	turnTimeout time.Duration
	// now is real time, not the backend's clock: Cisco counts calls in
	// real time, and a test's fake clock does not move while a call waits.
	now func() time.Time
}

// LimiterOption sets up a Limiter.
type LimiterOption func(*Limiter)

// WithLimits replaces AdminLimits with limits, shortest window first;
// none means no rate limit, only one call at a time per API key.
func WithLimits(limits ...RateLimit) LimiterOption {
	return func(l *Limiter) { l.limits = limits }
}

// WithTurnTimeout sets how long a call waits for its API key's turn before
// the key counts as busy; zero or less means CallTimeout.
func WithTurnTimeout(d time.Duration) LimiterOption {
	return func(l *Limiter) {
		if d > 0 {
			l.turnTimeout = d
		}
	}
}

// NewLimiter builds a limiter; without options it keeps AdminLimits and
// waits up to CallTimeout for a turn.
func NewLimiter(opts ...LimiterOption) *Limiter {
	l := &Limiter{keys: make(map[string]*apiKeyState), limits: AdminLimits, turnTimeout: CallTimeout, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Acquire waits for the API key's turn and for its rate limits, for a
// call of Cisco's admin API. The caller must call release after its call.
func (l *Limiter) Acquire(ctx context.Context, apiKey string) (release func(), err error) {
	t, err := l.turn(ctx, apiKey)
	if err != nil {
		return nil, err
	}
	defer t.cancel()
	wait := t.ks.wait(l.now(), t.limits)
	if wait > 0 {
		if d, ok := t.ctx.Deadline(); ok && l.now().Add(wait).After(d) {
			t.release()
			return nil, &RateLimitedError{Wait: wait}
		}
		if err := sleepCtx(t.ctx, wait); err != nil {
			t.release()
			return nil, &RateLimitedError{Wait: wait}
		}
	}
	t.ks.record(l.now(), t.limits)
	return t.release, nil
}

// AcquireTurn waits for the API key's turn only, for a call that the admin
// API's limits do not count, such as a token request alone. The caller
// must call release after its call.
func (l *Limiter) AcquireTurn(ctx context.Context, apiKey string) (release func(), err error) {
	t, err := l.turn(ctx, apiKey)
	if err != nil {
		return nil, err
	}
	t.cancel()
	return t.release, nil
}

// heldTurn is an API key's turn, held: ctx is the caller's, bounded by
// the turn timeout, and cancel ends it.
type heldTurn struct {
	ks      *apiKeyState
	limits  []RateLimit
	release func()
	ctx     context.Context
	cancel  context.CancelFunc
}

// turn waits for the API key's turn, at most the turn timeout.
func (l *Limiter) turn(caller context.Context, apiKey string) (*heldTurn, error) {
	l.mu.Lock()
	ks, ok := l.keys[apiKey]
	if !ok {
		ks = &apiKeyState{turn: make(chan struct{}, 1)}
		l.keys[apiKey] = ks
	}
	t := &heldTurn{ks: ks, limits: l.limits, release: func() { <-ks.turn }}
	l.mu.Unlock()

	// A caller whose deadline has passed starts nothing, even when the
	// turn is free: a select picks at random among ready cases.
	if err := caller.Err(); err != nil {
		return nil, err
	}
	t.ctx, t.cancel = context.WithTimeout(caller, l.turnTimeout)
	select {
	case ks.turn <- struct{}{}:
	case <-t.ctx.Done():
		t.cancel()
		if err := caller.Err(); err != nil {
			return nil, err // the caller's own deadline: not started
		}
		return nil, ErrAPIKeyBusy
	}
	if err := caller.Err(); err != nil {
		// The deadline passed while the turn came free.
		t.release()
		t.cancel()
		return nil, err
	}
	return t, nil
}

// wait returns how long until a call fits every window.
func (ks *apiKeyState) wait(now time.Time, limits []RateLimit) time.Duration {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var wait time.Duration
	for _, l := range limits {
		if len(ks.calls) < l.Calls {
			continue
		}
		// The call l.Calls back must have left the window. The margin
		// covers the token fetch and transit between our record and Cisco's.
		oldest := ks.calls[len(ks.calls)-l.Calls]
		if w := oldest.Add(l.Window + rateLimitMargin).Sub(now); w > wait {
			wait = w
		}
	}
	return wait
}

func (ks *apiKeyState) record(now time.Time, limits []RateLimit) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if len(limits) == 0 {
		return
	}
	// Forget calls older than the longest window.
	horizon := now.Add(-limits[len(limits)-1].Window)
	i := 0
	for i < len(ks.calls) && ks.calls[i].Before(horizon) {
		i++
	}
	ks.calls = append(ks.calls[i:], now)
}

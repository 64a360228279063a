package backend

// The per-API-key limiter: one Cisco call at a time per API key, manual or
// scheduled, within Cisco's documented rate limits.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
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

// apiKeyLimiter holds the turn and the recent calls of every API key.
type apiKeyLimiter struct {
	mu   sync.Mutex
	keys map[string]*apiKeyState
	// limits are the rate limits kept per API key.
	limits []rateLimit
	// turnTimeout is how long a call waits for its API key's turn before
	// the key counts as busy.
	turnTimeout time.Duration
	// now is real time, not the backend's clock: Cisco counts calls in
	// real time, and a test's fake clock does not move while a call waits.
	now func() time.Time
}

func newAPIKeyLimiter() *apiKeyLimiter {
	return &apiKeyLimiter{keys: make(map[string]*apiKeyState), limits: ciscoAdminLimits, turnTimeout: ciscoCallTimeout, now: time.Now}
}

// acquire waits for the API key's turn and for its rate limits. The caller
// must call release after its Cisco call.
func (l *apiKeyLimiter) acquire(ctx context.Context, apiKey string) (release func(), err error) {
	l.mu.Lock()
	ks, ok := l.keys[apiKey]
	if !ok {
		ks = &apiKeyState{turn: make(chan struct{}, 1)}
		l.keys[apiKey] = ks
	}
	limits := l.limits
	l.mu.Unlock()

	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, l.turnTimeout)
	defer cancel()
	select {
	case ks.turn <- struct{}{}:
	case <-ctx.Done():
		if err := caller.Err(); err != nil {
			return nil, err // the caller's own deadline: not started
		}
		return nil, errAPIKeyBusy
	}
	release = func() { <-ks.turn }
	wait := ks.wait(l.now(), limits)
	if wait > 0 {
		if d, ok := ctx.Deadline(); ok && l.now().Add(wait).After(d) {
			release()
			return nil, &rateLimitedError{wait: wait}
		}
		if err := sleepCtx(ctx, wait); err != nil {
			release()
			return nil, &rateLimitedError{wait: wait}
		}
	}
	ks.record(l.now(), limits)
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

package cisco

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLimiter_OneCallPerAPIKey: a call waits for its API key's turn and
// then counts the key as busy; another API key does not wait.
func TestLimiter_OneCallPerAPIKey(t *testing.T) {
	l := NewLimiter(WithLimits(), WithTurnTimeout(50*time.Millisecond))
	release, err := l.Acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := l.Acquire(context.Background(), "a"); !errors.Is(err, ErrAPIKeyBusy) {
		t.Fatalf("a second call of a busy API key: err = %v, want ErrAPIKeyBusy", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("gave up after %v, before its turn timeout", d)
	}
	other, err := l.Acquire(context.Background(), "b")
	if err != nil {
		t.Fatalf("another API key waited: %v", err)
	}
	other()
	release()
	again, err := l.Acquire(context.Background(), "a")
	if err != nil {
		t.Fatalf("the released API key: %v", err)
	}
	again()
}

// TestLimiter_CallerDeadlineIsNotBusy: a caller whose own context ends
// while it waits gets its context's error, not a busy API key.
func TestLimiter_CallerDeadlineIsNotBusy(t *testing.T) {
	l := NewLimiter(WithLimits())
	release, err := l.Acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
}

// TestLimiter_RateLimits: a call that the limits allow only after the
// turn's deadline is refused at once with the wait, and gives its turn back.
func TestLimiter_RateLimits(t *testing.T) {
	l := NewLimiter(WithLimits(RateLimit{Window: time.Hour, Calls: 1}), WithTurnTimeout(time.Second))
	release, err := l.Acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	release()
	start := time.Now()
	_, err = l.Acquire(context.Background(), "a")
	var limited *RateLimitedError
	if !errors.As(err, &limited) || limited.Wait < 59*time.Minute || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("err = %v, want a RateLimitedError of about an hour", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("waited %v for a call it could not make", d)
	}
	if _, err := l.Acquire(context.Background(), "a"); !errors.As(err, &limited) {
		t.Fatalf("the refused call kept the turn: err = %v", err)
	}
}

// TestLimiter_DefaultsToCiscoLimits: without WithLimits, Cisco's five calls
// per second hold; WithLimits() with none lifts them.
func TestLimiter_DefaultsToCiscoLimits(t *testing.T) {
	calls := func(l *Limiter, n int) error {
		for i := 0; i < n; i++ {
			release, err := l.Acquire(context.Background(), "a")
			if err != nil {
				return err
			}
			release()
		}
		return nil
	}
	var limited *RateLimitedError
	if err := calls(NewLimiter(WithTurnTimeout(100*time.Millisecond)), 6); !errors.As(err, &limited) {
		t.Fatalf("six calls within a second under Cisco's limits: err = %v, want a RateLimitedError", err)
	}
	if err := calls(NewLimiter(WithLimits(), WithTurnTimeout(100*time.Millisecond)), 50); err != nil {
		t.Fatalf("fifty calls without limits: %v", err)
	}
}

// TestLimiter_ExpiredCallerStartsNothing: a caller whose deadline has
// passed never gets a turn, even a free one, so no Cisco call starts after
// the caller's deadline.
func TestLimiter_ExpiredCallerStartsNothing(t *testing.T) {
	l := NewLimiter(WithLimits())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 200; i++ {
		release, err := l.Acquire(ctx, "a")
		if err == nil {
			release()
			t.Fatalf("attempt %d: a caller whose context had ended got the free turn", i+1)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: err = %v, want the caller's own error", i+1, err)
		}
	}
}

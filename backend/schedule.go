package backend

// When a key is due: the period or schedule, the window, the 89-day cap,
// the backoff after a failure, and the gap check of a schedule.

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/vault/sdk/rotation"
	"github.com/robfig/cron/v3"
)

const (
	// keyLifetime is Cisco's lockout: a key older than this stops working.
	keyLifetime           = 90 * 24 * time.Hour
	defaultRotationPeriod = 60 * 24 * time.Hour
	minRotationPeriod     = time.Minute
	minRotationWindow     = time.Hour
	// maxRotationGap is the longest a schedule may leave a key unrotated.
	maxRotationGap = 89 * 24 * time.Hour

	minRetryBackoff = time.Minute
	maxRetryBackoff = time.Hour
	// lastDayBackoff caps the backoff in the last day before the lockout.
	lastDayBackoff = 5 * time.Minute
)

// parseRotationSchedule parses a 5-field cron schedule in UTC and rejects
// one that can leave a key unrotated for more than 89 days.
func parseRotationSchedule(s string, now time.Time) (*cron.SpecSchedule, error) {
	sched, err := rotation.DefaultScheduler.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("rotation_schedule %q is not a 5-field cron expression (minute hour day-of-month month day-of-week, UTC), e.g. \"0 3 1 * *\": %v", truncate(s, 60), err)
	}
	if gap := maxScheduleGap(sched, now); gap > maxRotationGap {
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
	if k == nil || (!k.hasKey() && !k.Stale) {
		return time.Time{}, false
	}
	if k.Stale {
		// A possibly dead key is recovered whatever the settings: that
		// finishes a rotation that was already asked for.
		return k.RetryAt, true
	}
	if at, ok := healDue(cfg, k); ok {
		// A dead key is healed whatever the rotation settings, unless
		// rotate_rejected_key is false.
		return at, true
	}
	if !k.GracefulAt.IsZero() {
		// Asked for: whatever the rotation settings; a failed attempt
		// retries with backoff.
		return later(k.GracefulAt, k.RetryAt), true
	}
	if cfg.DisableAutomatedRotation {
		return time.Time{}, false
	}
	if !k.RetryAt.IsZero() {
		return retryInWindow(cfg, k, k.RetryAt), true
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

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// retryInWindow moves a retry that falls outside every window of the
// schedule to the next run, but not past the 89-day limit.
func retryInWindow(cfg *orgConfig, k *keyState, retry time.Time) time.Time {
	sched := cfg.schedule()
	if sched == nil || cfg.RotationWindow <= 0 {
		return retry
	}
	run := sched.Next(retry.Add(-cfg.RotationWindow))
	if !run.After(retry) {
		return retry // inside the window of run
	}
	if limit := k.issuedAt().Add(maxRotationGap); run.After(limit) {
		run = limit
	}
	if run.Before(retry) {
		return retry
	}
	return run
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

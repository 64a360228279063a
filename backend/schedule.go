package backend

// A rotation schedule's checks: it parses, and it never leaves a key
// unrotated for 89 days. When a key is due is bucketkey's.

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/hashicorp/vault/sdk/rotation"
	"github.com/robfig/cron/v3"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
)

const (
	// keyLifetime is Cisco's lockout: a key older than this stops working.
	keyLifetime           = bucketkey.KeyLifetime
	defaultRotationPeriod = 60 * 24 * time.Hour
	minRotationPeriod     = time.Minute
	minRotationWindow     = time.Hour
	// maxRotationGap is the longest a schedule may leave a key unrotated.
	maxRotationGap = bucketkey.MaxRotationGap
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

// effectivePeriod is the rotation period, or with a schedule the time
// between its next two runs.
func effectivePeriod(cfg *orgConfig, now time.Time) time.Duration {
	if sched := cfg.schedule(); sched != nil {
		first := sched.Next(now)
		return sched.Next(first).Sub(first)
	}
	return cfg.RotationPeriod
}

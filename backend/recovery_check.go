package backend

// Checking a stale key before its recovery rotates it. A key that AWS
// still accepts a while after the mark was not replaced by Cisco, and
// rotating it would only kill the key the consumers hold. A lifted mark is
// checked again later: a Cisco call that timed out may still land.

import (
	"context"
	"fmt"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// staleCheckSettle is how long after a stale mark a check that passes
// proves the key works: AWS may accept a key that Cisco replaced for some
// seconds after the replacement.
const staleCheckSettle = time.Minute

// settledSinceMark reports whether a check of stale key k at t is late
// enough after the mark to be trusted.
func settledSinceMark(k *keyState, t time.Time) bool {
	return !t.Before(k.LastErrorTime.Add(staleCheckSettle))
}

// staleCheck is a check of a stale key, made before the name's lock so
// that nothing waits on AWS under it.
type staleCheck struct {
	key    *keyState
	result stscheck.Result
	at     time.Time
}

// checkStaleKey checks name's served key if a check could spare it a
// recovery rotation.
func (b *backend) checkStaleKey(ctx context.Context, name string) *staleCheck {
	e, _ := b.cached(name)
	if e == nil || !e.key.hasKey() || !e.key.Stale || e.key.Replaced || e.config.DisableKeyCheck {
		return nil
	}
	if b.checker.Silent(e.config.stsURL()) {
		// Each check of an unreachable STS takes the check's full timeout,
		// and a tick recovers its stale keys one after another: rotate.
		b.logger.Warn("STS gave no answer lately; recovering the stale key without a check", "name", name, "sts_url", e.config.stsURL())
		return nil
	}
	at := b.now()
	return &staleCheck{key: e.key, result: b.checkKey(ctx, e.config, e.key, checkRecovery), at: at}
}

// useStaleCheck decides, under the name's lock, what a recovery does with
// its check. A key that did not pass is rotated (next nil,
// rotate true). A key that passed is not, unless its schedule makes it
// due: the mark is lifted when the pass proves the key works, else the
// recovery waits until a check can prove it. next is the stored key;
// rotate says whether the rotation goes on, on next when it is not nil.
func (o *lockedOrg) useStaleCheck(ctx context.Context, c *staleCheck) (next *keyState, rotate bool, err error) {
	b, name, e := o.b, o.name, o.e
	k := e.key
	if c == nil || !sameKeyHistory(c.key, k) || !k.Stale || k.Replaced || e.config.DisableKeyCheck {
		return nil, true, nil
	}
	if c.result.Outcome != stscheck.Valid {
		b.logger.Warn("the stale key did not pass the check; rotating it", "name", name, "access_key_id", k.AccessKeyID, "result", c.result.String())
		return nil, true, nil
	}
	lift := settledSinceMark(k, c.at)
	next = k.withCheck(c.result, e.config.stsURL(), c.at)
	next.RetryAt = k.LastErrorTime.Add(staleCheckSettle).Truncate(time.Second).Add(time.Second)
	if lift {
		next.Stale, next.RetryAt, next.ConsecutiveFailures = false, time.Time{}, 0
		next.StaleCleared = fmt.Sprintf("%s: AWS STS still accepts key %s (account %s), so Cisco did not replace it; "+
			"the stale mark (%s) was lifted without a rotation", c.at.UTC().Format(time.RFC3339), k.AccessKeyID, c.result.Account, k.LastError)
		next.RecheckFrom, next.RechecksDone = c.at, 0
	}
	unmarked := *next
	unmarked.Stale, unmarked.RetryAt = false, time.Time{}
	if at, ok := nextRotation(e.config, &unmarked, b.now()); ok && !at.After(b.now()) {
		// The schedule rotates the key anyway.
		if !lift {
			return nil, true, nil
		}
		rotate = true
	}
	if err := o.storeKey(ctx, next); err != nil {
		return nil, false, fmt.Errorf("storing the stale key's check: %w", err)
	}
	if !lift {
		b.logger.Info("the stale key still works, but too soon after the mark to prove that Cisco did not replace it; checking again then",
			"name", name, "access_key_id", k.AccessKeyID, "retry_at", next.RetryAt.Format(time.RFC3339))
		return next, false, nil
	}
	b.metrics.rotations.WithLabelValues(name, triggerRecovery, "stale_cleared").Inc()
	b.logger.Info("the stale key still works: lifted the stale mark without a rotation", "name", name,
		"access_key_id", k.AccessKeyID, "account", c.result.Account)
	return next, rotate, nil
}

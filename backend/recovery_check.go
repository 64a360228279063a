package backend

// Checking a stale key before its recovery rotates it, without the name's
// lock; bucketkey decides what the check means. A key that AWS still
// accepts a while after the mark was not replaced by Cisco, and rotating it
// would only kill the key the consumers hold.

import (
	"context"
	"fmt"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

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
	if e == nil || !e.key.RecoveryMayCheck(e.config.facts()) {
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

// useStaleCheck feeds a recovery's check to the key, under the name's
// lock, and reports what bucketkey decided: next is the stored key when
// the check was stored (nil when not); rotate says whether the rotation
// goes on, on next when it is not nil.
func (o *lockedOrg) useStaleCheck(ctx context.Context, c *staleCheck) (next *keyState, rotate bool, err error) {
	if c == nil {
		return nil, true, nil
	}
	ev := bucketkey.StaleChecked{Of: c.key, Result: c.result, At: c.at}
	next, eff, err := o.step(ctx, ev, triggerRecovery)
	if err != nil {
		return nil, false, fmt.Errorf("storing the stale key's check: %w", err)
	}
	if !eff.Store {
		return nil, eff.Rotate, nil
	}
	return next, eff.Rotate, nil
}

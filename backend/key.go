package backend

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
)

const keyPrefix = "key/"

// storeAttempts is how often a key write is tried before it is given up,
// and storeRetryWait the first wait between two tries; each wait doubles,
// so the tries span 3.1 s: a storage blip or a Raft election (1.7 s
// measured) passes, and a request's deadline still ends the waits.
const (
	storeAttempts  = 6
	storeRetryWait = 100 * time.Millisecond
)

// keyState is an organization's key record; bucketkey decides its life.
type keyState = bucketkey.Record

// Triggers of a rotation, reported in events and metrics.
const (
	triggerManual    = bucketkey.TriggerManual
	triggerScheduled = bucketkey.TriggerScheduled
	triggerRecovery  = bucketkey.TriggerRecovery
	triggerHeal      = bucketkey.TriggerHeal
	triggerGraceful  = bucketkey.TriggerGraceful
)

// getKey reads the stored key of an organization, (nil, nil) when none.
func getKey(ctx context.Context, s logical.Storage, name string) (*keyState, error) {
	var k keyState
	ok, err := getJSON(ctx, s, keyPrefix+name, &k)
	if err != nil || !ok {
		return nil, err
	}
	return &k, nil
}

// facts are what bucketkey's decisions need of the config.
func (c *orgConfig) facts() bucketkey.Facts {
	f := bucketkey.Facts{
		STSURL:        c.stsURL(),
		KeyCheck:      !c.DisableKeyCheck,
		Heals:         c.heals(),
		Automated:     !c.DisableAutomatedRotation,
		Period:        c.RotationPeriod,
		HasSchedule:   c.RotationSchedule != "",
		Window:        c.RotationWindow,
		CheckInterval: c.checkInterval(),
	}
	if s := c.schedule(); s != nil {
		f.Schedule = s
	}
	return f
}

// jitter spreads the retries of many organizations.
func jitter() uint64 { return rand.Uint64() }

// step feeds ev to the organization's key record and does what comes out:
// it stores the new record (and, when storage refuses it, keeps it in
// memory if the step says so), caches it, then logs, counts and notifies.
// It returns the new record and storage's error, if any. Effects that
// depend on the caller (a WAL entry to delete, a probe) are left to it.
func (o *lockedOrg) step(ctx context.Context, ev bucketkey.Event, trigger string) (*keyState, bucketkey.Effects, error) {
	return o.stepAt(ctx, ev, trigger, o.b.now())
}

// stepAt is step at time now: an import is dated when it was asked for,
// before its check.
func (o *lockedOrg) stepAt(ctx context.Context, ev bucketkey.Event, trigger string, now time.Time) (*keyState, bucketkey.Effects, error) {
	b := o.b
	var f bucketkey.Facts
	if o.e != nil {
		f = o.e.config.facts()
		if k := o.e.key; k != nil && k.HealBlocked() != "" {
			f.SharedWith = b.sharingCiscoOrg(o.name, o.e.config)
		}
	}
	var prev *keyState
	if o.e != nil {
		prev = o.e.key
	}
	next, eff := bucketkey.Step(prev, ev, f, now)
	var err error
	if eff.Store {
		if err = o.putKey(ctx, next); err != nil && !eff.KeepUnstored {
			return next, eff, err
		}
	}
	if next != prev {
		o.setKey(next)
	}
	o.emit(ctx, next, eff, trigger)
	return next, eff, err
}

// emit logs, counts and notifies what a step says.
func (o *lockedOrg) emit(ctx context.Context, k *keyState, eff bucketkey.Effects, trigger string) {
	b := o.b
	for _, l := range eff.Logs {
		kv := append([]interface{}{"name", o.name}, l.KV...)
		switch l.Level {
		case bucketkey.Debug:
			b.logger.Debug(l.Msg, kv...)
		case bucketkey.Info:
			b.logger.Info(l.Msg, kv...)
		case bucketkey.Warn:
			b.logger.Warn(l.Msg, kv...)
		default:
			b.logger.Error(l.Msg, kv...)
		}
	}
	if eff.Count != "" {
		b.metrics.rotations.WithLabelValues(o.name, trigger, string(eff.Count)).Inc()
	}
	if n := eff.Notice; n != nil {
		version := 0
		if k != nil {
			version = k.Version()
		}
		b.sendEvent(ctx, n.Kind, o.name, version, n.Trigger, n.Message)
	}
}

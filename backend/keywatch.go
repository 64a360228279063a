package backend

// The scheduled checks of served keys: started by the tick in the
// background, never under a name's lock and never in a read, and recorded
// on the key under its lock. A key can die without Vault causing it: a
// refresh in Cisco's dashboard, or a Cisco call that timed out and landed
// late. These checks find it.

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

const (
	// maxChecksPerTick bounds the checks one tick starts; the rest stay
	// due for the next tick. STS's rate (stscheck.DefaultRate) sends them.
	maxChecksPerTick = 300
	// tickCheckWait is how long a tick waits for the checks it started,
	// so that a key they found dead is healed in the same tick.
	tickCheckWait = 15 * time.Second
)

// startCheck checks name's served key k in the background, unless a
// scheduled check of the name is still running. done closes when the
// check has been recorded.
func (b *backend) startCheck(s logical.Storage, name string, k *keyState) (done <-chan struct{}, started bool) {
	return b.probes.start(probeSlot{name: name, scheduled: true}, false, func(ctx context.Context) {
		cfg := b.probeConfig(name, k)
		if cfg == nil {
			return
		}
		at := b.now()
		r := b.checkKey(ctx, cfg, k, checkScheduled)
		if ctx.Err() != nil {
			return
		}
		b.afterCheck(ctx, s, name, "record the scheduled key check", func(o *lockedOrg) {
			o.recordServedCheck(ctx, k, r, at, checkScheduled)
		})
	})
}

// recordServedCheck feeds a check of k at time at, scheduled or asked for
// (trigger), to the served key: bucketkey records it if k is still served
// and no newer check of it was recorded, and decides whether it confirms a
// rejection or marks the key stale again. A mark that storage refuses is
// written to the WAL instead, so that a restart marks the key too.
func (o *lockedOrg) recordServedCheck(ctx context.Context, k *keyState, r stscheck.Result, at time.Time, trigger string) {
	b, name := o.b, o.name
	if o.e == nil {
		return
	}
	prev := o.e.key
	ev := bucketkey.Checked{Of: k, Result: r, At: at, Trigger: trigger}
	_, eff, err := o.step(ctx, ev, trigger)
	switch {
	case err == nil:
	case eff.WALIfUnstored:
		// The mark names the entry as settled, so that the next stored
		// state of the key (the mark, or a lift) settles it, and the next
		// tick does.
		id, walErr := putRotationWAL(ctx, o.s, name, prev, at)
		if walErr == nil {
			o.step(ctx, bucketkey.RemarkWAL{ID: id}, trigger)
			b.walPending.Store(true)
		}
		b.logger.Error("could not store the stale mark of a rejected key; marking it in memory", "name", name,
			"error", err, "wal_written", walErr == nil)
	case eff.KeepUnstored:
		b.logger.Warn("could not store the key check's result; keeping it in memory", "name", name, "error", err)
	default:
		b.logger.Warn("could not store the key check's result", "name", name, "error", err)
	}
}

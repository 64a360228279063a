package backend

// The scheduled checks of served keys: started by the tick in the
// background, never under a name's lock and never in a read, and recorded
// on the key under its lock. A key can die without Vault causing it: a
// refresh in Cisco's dashboard, or a Cisco call that timed out and landed
// late. These checks find it.

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

const (
	checkScheduled = "scheduled"
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

// recordServedCheck stores a check of k at time at, scheduled or asked for
// (trigger), if k is still served and no newer check of it was recorded. A pass ends any row of rejections and counts for the
// re-checks that were due. A rejection during the re-checks of a key that
// passed before marks it stale again, so that its recovery replaces it; any
// other rejection starts or confirms a row, and a confirmed row marks the
// key rejected. No answer is no check: a re-check or confirmation stays
// due for the next tick.
func (o *lockedOrg) recordServedCheck(ctx context.Context, k *keyState, r stscheck.Result, at time.Time, trigger string) {
	b, name, e := o.b, o.name, o.e
	if e == nil || e.key == nil || e.key.Version != k.Version || e.key.AccessKeyID != k.AccessKeyID {
		return
	}
	if at.Before(e.key.CheckTriedAt) {
		// A check that answered late must not undo a newer one's result.
		b.logger.Debug("dropped a key check older than the key's last one", "name", name, "checked_at", at, "last", e.key.CheckTriedAt)
		return
	}
	if e.key.Stale {
		// Its recovery decides what the key's checks mean.
		o.recordCheck(ctx, k, r)
		return
	}
	cur := e.key
	done, recheck := rechecksDue(cur, at)
	next := cur.withCheck(r, e.config.stsURL(), at)
	if next.HealBlocked != "" && b.sharingCiscoOrg(name, e.config) == "" {
		next.HealBlocked = "" // the other config is gone: heal again
	}
	switch r.Outcome {
	case stscheck.Valid:
		if recheck {
			next.RechecksDone = done
		}
		if cur.Rejected {
			b.logger.Info("AWS accepts the served key again: it is no longer shown as rejected", "name", name,
				"access_key_id", k.AccessKeyID, "account", r.Account)
		}
	case stscheck.Invalid:
		if recheck && cur.passedHere(e.config) && !stormGuarded(cur, at) {
			// A re-mark needs the confirmation a rejection needs (a row
			// already confirmed is one); until then the re-check stays due.
			if cur.Rejected || next.noteRejection(at) {
				next.Rejected, next.RejectedAt = false, time.Time{}
				o.remarkStale(ctx, next, r, at, trigger)
				return
			}
			b.logger.Warn("AWS STS rejected the key that came out of a stale episode; checking again in a minute to confirm",
				"name", name, "access_key_id", k.AccessKeyID, "result", r.String())
			break
		}
		if recheck {
			next.RechecksDone = done // answered, and it re-marks nothing
		}
		if next.noteRejection(at) {
			o.reportRejected(ctx, next, r, trigger)
		} else if !cur.Rejected {
			b.logger.Warn("AWS STS rejected the served key; checking again in a minute to confirm", "name", name,
				"access_key_id", k.AccessKeyID, "result", r.String())
		}
	default:
		b.logger.Warn("could not check the served key; trying again", "name", name, "access_key_id", k.AccessKeyID, "result", r.String())
	}
	if err := o.storeKey(ctx, next); err != nil {
		// What AWS said stands in memory, as a re-mark does: a rejection
		// storage refused is still shown, and reported once. A restart
		// forgets it and checks again.
		b.logger.Warn("could not store the key check's result; keeping it in memory", "name", name, "error", err)
		o.setKey(next)
	}
}

// reportRejected says that AWS rejected the served key twice, a minute or
// more apart: it is dead. The heal, when on, rotates it at the next tick.
func (o *lockedOrg) reportRejected(ctx context.Context, k *keyState, r stscheck.Result, trigger string) {
	b, name := o.b, o.name
	what := "rotate_rejected_key is false: rotate now, or import the key Cisco's dashboard shows"
	if _, heals := healDue(o.e.config, k); heals {
		what = "rotating it at the next tick"
	} else if healedLately(k) {
		what = "until " + k.StormGuardFrom.Add(healCooldown).UTC().Format(time.RFC3339) + ", "
		what += "a day after a heal of this organization or a re-check marking its key stale again, it is not rotated again: " +
			"something else may keep rotating it (a second config or API key?), or STS flaps; rotate or import to end this"
	} else if !k.passedHere(o.e.config) {
		what = "AWS never accepted this key at " + o.e.config.stsURL() + ", so it is not rotated for it: check sts_url, then rotate or import"
	}
	msg := fmt.Sprintf("AWS STS rejects the served key %s since %s (%s): it was replaced outside Vault, "+
		"for example by a refresh in Cisco's dashboard; %s", k.AccessKeyID, k.RejectedAt.UTC().Format(time.RFC3339), r.Reason, what)
	b.logger.Error("the served key is dead: "+msg, "name", name, "access_key_id", k.AccessKeyID)
	b.sendEvent(ctx, eventKeyRejected, name, k.Version, trigger, msg)
}

// remarkStale marks a key stale again after AWS rejected it during its
// re-checks: a Cisco call that timed out landed after all. The next tick
// recovers it. failed is k with the check recorded.
func (o *lockedOrg) remarkStale(ctx context.Context, failed *keyState, r stscheck.Result, now time.Time, trigger string) {
	b, name, e := o.b, o.name, o.e
	msg := fmt.Sprintf("AWS STS rejects key %s, which came out of a stale mark: Cisco replaced it after all (%s)",
		failed.AccessKeyID, r.Reason)
	failed.markFailed(msg, now, true, true)
	failed.RetryAt, failed.StormGuardFrom = now, now
	if err := o.putKey(ctx, failed); err != nil {
		// A WAL entry on the key makes a restart mark it stale too. The
		// mark names it as settled, so that the next stored state of the
		// key (the mark, or a lift) settles it, and the next tick does.
		id, walErr := putRotationWAL(ctx, o.s, name, e.key, now)
		if walErr == nil {
			failed.SettledRotation = id
			b.walPending.Store(true)
		}
		b.logger.Error("could not store the stale mark of a rejected key; marking it in memory", "name", name,
			"error", err, "wal_written", walErr == nil)
	}
	o.setKey(failed)
	b.logger.Error("AWS rejects the key that came out of a stale mark: rotating it as soon as possible", "name", name,
		"access_key_id", failed.AccessKeyID, "result", r.String())
	b.sendEvent(ctx, eventRotateFail, name, failed.Version, trigger, msg)
}

package bucketkey

// What AWS's answers about the served key do to it: the routine checks,
// the re-checks after a stale episode, the confirmation of a rejection,
// and the check of a stale key before its recovery rotates it.

import (
	"fmt"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// checked records a check of the served key, scheduled or asked for, if
// the key is still served and no newer check of it was recorded. A pass
// ends any row of rejections and counts for the re-checks that were due.
// A rejection during the re-checks of a key that passed before marks it
// stale again, once confirmed, so that its recovery replaces it; any other
// rejection starts or confirms a row, and a confirmed row marks the key
// rejected. No answer is no check: a re-check or confirmation stays due.
func checked(r *Record, ev Checked, f Facts, now time.Time) (*Record, Effects) {
	var eff Effects
	if !r.Is(ev.Of) {
		return r, eff
	}
	if ev.At.Before(r.f.CheckTriedAt) {
		// A check that answered late must not undo a newer one's result.
		eff.log(Debug, "dropped a key check older than the key's last one", "checked_at", ev.At, "last", r.f.CheckTriedAt)
		return r, eff
	}
	if r.f.Stale {
		// Its recovery decides what the key's checks mean.
		return probed(r, Probed{Of: ev.Of, Result: ev.Result}, f, now)
	}
	res, at, id := ev.Result, ev.At, r.f.AccessKeyID
	done, recheck := rechecksDue(r, at)
	next := r.withCheck(res, f.STSURL, at)
	if next.f.HealBlocked != "" && f.SharedWith == "" {
		next.f.HealBlocked = "" // the other config is gone: heal again
	}
	// What AWS said stands in memory when storage refuses it: a rejection
	// is still shown, and reported once. A restart forgets it and checks
	// again.
	eff = Effects{Store: true, KeepUnstored: true}
	switch res.Outcome {
	case stscheck.Valid:
		if recheck {
			next.f.RechecksDone = done
		}
		if r.f.Rejected {
			eff.log(Info, "AWS accepts the served key again: it is no longer shown as rejected", "access_key_id", id, "account", res.Account)
		}
	case stscheck.Invalid:
		if recheck && r.PassedAt(f.STSURL) && !r.StormGuarded(at) {
			// A re-mark needs the confirmation a rejection needs (a row
			// already confirmed is one); until then the re-check stays due.
			if r.f.Rejected || next.noteRejection(at) {
				next.f.Rejected, next.f.RejectedAt = false, time.Time{}
				return remarked(next, res, at, ev.Trigger)
			}
			eff.log(Warn, "AWS STS rejected the key that came out of a stale episode; checking again in a minute to confirm",
				"access_key_id", id, "result", res.String())
			break
		}
		if recheck {
			next.f.RechecksDone = done // answered, and it re-marks nothing
		}
		if next.noteRejection(at) {
			rejected(&eff, next, res, ev.Trigger, f)
		} else if !r.f.Rejected {
			eff.log(Warn, "AWS STS rejected the served key; checking again in a minute to confirm", "access_key_id", id, "result", res.String())
		}
	default:
		eff.log(Warn, "could not check the served key; trying again", "access_key_id", id, "result", res.String())
	}
	return next, eff
}

// rejected says that AWS rejected the served key k twice, a minute or
// more apart: it is dead. The heal, when on, rotates it at the next tick.
func rejected(eff *Effects, k *Record, res stscheck.Result, trigger string, f Facts) {
	what := "rotate_rejected_key is false: rotate now, or import the key Cisco's dashboard shows"
	if _, heals := HealDue(k, f); heals {
		what = "rotating it at the next tick"
	} else if k.HealedLately() {
		what = "until " + k.f.StormGuardFrom.Add(HealCooldown).UTC().Format(time.RFC3339) + ", "
		what += "a day after a heal of this organization or a re-check marking its key stale again, it is not rotated again: " +
			"something else may keep rotating it (a second config or API key?), or STS flaps; rotate or import to end this"
	} else if !k.PassedAt(f.STSURL) {
		what = "AWS never accepted this key at " + f.STSURL + ", so it is not rotated for it: check sts_url, then rotate or import"
	}
	msg := fmt.Sprintf("AWS STS rejects the served key %s since %s (%s): it was replaced outside Vault, "+
		"for example by a refresh in Cisco's dashboard; %s", k.f.AccessKeyID, k.f.RejectedAt.UTC().Format(time.RFC3339), res.Reason, what)
	eff.log(Error, LogKeyMayBeDead+": "+msg, "access_key_id", k.f.AccessKeyID)
	eff.Notice = &Notice{Kind: NoticeKeyRejected, Trigger: trigger, Message: msg}
}

// remarked marks a key stale again after AWS rejected it during its
// re-checks: a Cisco call that timed out landed after all. The next tick
// recovers it. next is the key with the check recorded.
func remarked(next *Record, res stscheck.Result, at time.Time, trigger string) (*Record, Effects) {
	msg := fmt.Sprintf("AWS STS rejects key %s, which came out of a stale mark: Cisco replaced it after all (%s)",
		next.f.AccessKeyID, res.Reason)
	next.markFailed(msg, at, true, true, 0)
	next.f.RetryAt, next.f.StormGuardFrom = at, at
	eff := Effects{Store: true, KeepUnstored: true, WALIfUnstored: true,
		Notice: &Notice{Kind: NoticeRotateFail, Trigger: trigger, Message: msg}}
	eff.log(Error, LogKeyMayBeDead+": AWS rejects the key that came out of a stale mark; rotating it as soon as possible",
		"access_key_id", next.f.AccessKeyID, "result", res.String())
	return next, eff
}

// staleChecked decides what a recovery does with its check of the stale
// key. A key that did not pass is rotated. A key that passed is not,
// unless its schedule makes it due: the mark is lifted when the pass
// proves the key works (it came StaleCheckSettle or more after the mark),
// else the recovery waits until a check can prove it.
func staleChecked(r *Record, ev StaleChecked, f Facts, now time.Time) (*Record, Effects) {
	rotate := Effects{Rotate: true}
	if r == nil || !SameHistory(ev.Of, r) || !r.RecoveryMayCheck(f) {
		return r, rotate
	}
	res, id := ev.Result, r.f.AccessKeyID
	if res.Outcome != stscheck.Valid {
		rotate.log(Warn, "the stale key did not pass the check; rotating it", "access_key_id", id, "result", res.String())
		return r, rotate
	}
	lift := r.settledSinceMark(ev.At)
	next := r.withCheck(res, f.STSURL, ev.At)
	next.f.RetryAt = r.f.LastErrorTime.Add(StaleCheckSettle).Truncate(time.Second).Add(time.Second)
	if lift {
		next.f.Stale, next.f.RetryAt, next.f.ConsecutiveFailures = false, time.Time{}, 0
		next.f.StaleCleared = fmt.Sprintf("%s: AWS STS still accepts key %s (account %s), so Cisco did not replace it; "+
			"the stale mark (%s) was lifted without a rotation", ev.At.UTC().Format(time.RFC3339), id, res.Account, r.f.LastError)
		next.f.RecheckFrom, next.f.RechecksDone = ev.At, 0
	}
	eff := Effects{Store: true}
	unmarked := *next
	unmarked.f.Stale, unmarked.f.RetryAt = false, time.Time{}
	if at, ok := NextRotation(&unmarked, f, now); ok && !at.After(now) {
		// The schedule rotates the key anyway.
		if !lift {
			return r, rotate
		}
		eff.Rotate = true
	}
	if !lift {
		eff.log(Info, "the stale key still works, but too soon after the mark to prove that Cisco did not replace it; checking again then",
			"access_key_id", id, "retry_at", next.f.RetryAt.Format(time.RFC3339))
		return next, eff
	}
	eff.Count = CountStaleCleared
	eff.log(Info, "the stale key still works: lifted the stale mark without a rotation", "access_key_id", id, "account", res.Account)
	return next, eff
}

package bucketkey

// Step: the whole life of a key as one function of the record, an event,
// the config's facts and the time. It does no I/O and reads no clock; the
// shell (the backend) takes the lock, stores, logs and notifies what the
// Effects say.

import (
	"fmt"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// Step returns the record after ev, and what the shell must do. r is nil
// when no key record is stored. A step that changes nothing returns r and
// no effects, or only a log line.
func Step(r *Record, ev Event, f Facts, now time.Time) (*Record, Effects) {
	switch ev := ev.(type) {
	case Rotated:
		return rotated(r, ev, f, now)
	case Lost:
		return lost(r, ev, now)
	case Failed:
		return failed(r, ev, now)
	case Imported:
		return imported(r, ev, f, now)
	case Checked:
		return checked(r, ev, f, now)
	case Probed:
		return probed(r, ev, f, now)
	case StaleChecked:
		return staleChecked(r, ev, f, now)
	case GracefulRequested:
		return gracefulRequested(r, ev, now)
	case WALFound:
		return walFound(r, ev, now)
	case RemarkWAL:
		if r == nil {
			return r, Effects{}
		}
		next := copyOf(r)
		next.f.SettledRotation = ev.ID
		return next, Effects{}
	case HealBlocked:
		if !r.HasKey() {
			return r, Effects{}
		}
		next := copyOf(r)
		next.f.HealBlocked = ev.Reason
		eff := Effects{Store: true, KeepUnstored: true}
		eff.log(Error, LogKeyMayBeDead+": not healing the rejected key: another config acts on the same Cisco organization", "other", ev.Other)
		return next, eff
	case SettingsChanged:
		if r == nil || !r.f.RetryAt.After(now) {
			return r, Effects{}
		}
		// New credentials, URLs or org_id may fix what failed: retry at
		// the next tick, not after the backoff.
		next := copyOf(r)
		next.f.RetryAt = now
		return next, Effects{Store: true, KeepUnstored: true}
	}
	panic(fmt.Sprintf("bucketkey: unknown event %T", ev))
}

// successor is the key that replaces prev: a new version with a clean
// status; the storm guard carries over.
func successor(prev *Record, k cisco.IssuedKey, origin string, now time.Time) *Record {
	next := &Record{f: fields{
		AccessKeyID:       k.AccessKeyID,
		SecretAccessKey:   k.SecretAccessKey,
		OldAccessKeyID:    k.OldAccessKeyID,
		KeyCreationDate:   k.CreationDate,
		LastVaultRotation: now,
		Version:           1,
		Origin:            origin,
	}}
	if prev != nil {
		next.f.Version, next.f.StormGuardFrom = prev.f.Version+1, prev.f.StormGuardFrom
	}
	return next
}

func rotated(r *Record, ev Rotated, f Facts, now time.Time) (*Record, Effects) {
	next := successor(r, ev.Issued, OriginRotation, now)
	next.f.SettledRotation, next.f.Trigger = ev.WALID, ev.Trigger
	switch ev.Trigger {
	case TriggerHeal:
		next.f.StormGuardFrom = now
	case TriggerManual:
		next.f.StormGuardFrom = time.Time{} // an operator acted: the guard ends
	}
	if r != nil && r.f.Stale {
		// A Cisco call of the stale episode may still land: re-check.
		next.f.RecheckFrom = now
	}
	eff := Effects{Store: true, Count: CountSuccess, Probe: f.KeyCheck, Notice: &Notice{Kind: NoticeRotate, Trigger: ev.Trigger}}
	eff.log(Info, "rotated the S3 bucket key", "version", next.f.Version, "access_key_id", next.f.AccessKeyID, "trigger", ev.Trigger)
	return next, eff
}

func lost(r *Record, ev Lost, now time.Time) (*Record, Effects) {
	next := copyOf(r)
	next.markFailed(ev.Message, now, true, true, ev.Jitter)
	next.f.Replaced = true
	next.f.SettledRotation = ev.WALID
	eff := Effects{Store: true, KeepUnstored: true, Count: CountLost,
		Notice: &Notice{Kind: NoticeRotateFail, Trigger: ev.Trigger, Message: ev.Message}}
	eff.log(Error, LogRotationFailed+": the key Cisco issued could not be stored and is lost; a new rotation is needed",
		"access_key_id", ev.IssuedID, "error", ev.Cause)
	return next, eff
}

func failed(r *Record, ev Failed, now time.Time) (*Record, Effects) {
	next := copyOf(r)
	next.markFailed(ev.Message, now, ev.Ambiguous, ev.Trigger != TriggerManual, ev.Jitter)
	if ev.Ambiguous && ev.Trigger == TriggerHeal {
		next.f.StormGuardFrom = now // Cisco may have rotated for the heal
	}
	if ev.WALID != "" {
		next.f.SettledRotation = ev.WALID
	}
	eff := Effects{Store: true, KeepUnstored: true, Count: CountFailure,
		Notice: &Notice{Kind: NoticeRotateFail, Trigger: ev.Trigger, Message: ev.Message}}
	// A definite failure leaves the served key working, but nothing
	// rotates until someone fixes its cause: it is an ERROR too.
	eff.log(Error, LogRotationFailed, "trigger", ev.Trigger, "ambiguous", ev.Ambiguous,
		"consecutive_failures", next.f.ConsecutiveFailures, "error", ev.Message)
	return next, eff
}

// markFailed records a failed rotation. retry schedules the next attempt
// with backoff; stale marks the served key as possibly dead.
func (r *Record) markFailed(msg string, now time.Time, stale, retry bool, jitter uint64) {
	k := &r.f
	k.LastError = msg
	k.LastErrorTime = now
	k.ConsecutiveFailures++
	if stale {
		k.Stale, k.StaleCleared, k.RecheckFrom, k.RechecksDone = true, "", time.Time{}, 0
	}
	if retry || k.Stale {
		wait := RetryBackoff(k.ConsecutiveFailures, jitter)
		// The last day before the lockout is never spent in long waits.
		if r.HasKey() && r.ExpiresAt().Sub(now) < 24*time.Hour && wait > lastDayBackoff {
			wait = lastDayBackoff
		}
		k.RetryAt = now.Add(wait).Truncate(time.Second)
	}
}

// withCheck is a copy of r with a check's result recorded. An answer
// (valid or invalid) dates CheckedAt; a pass at stsURL also ends any row
// of rejections.
func (r *Record) withCheck(res stscheck.Result, stsURL string, now time.Time) *Record {
	next := copyOf(r)
	k := &next.f
	k.CheckResult = res.Outcome
	k.CheckTriedAt = now
	switch res.Outcome {
	case stscheck.Valid:
		k.VerifiedAt, k.VerifyError, k.CheckedAt = now, "", now
		k.VerifiedSTSURL = stsURL
		if k.Rejected && !k.Stale {
			// A retry of a failed heal must not rotate a key that works.
			// A stale key's retry is its recovery: only the recovery's own
			// check, late enough after the mark, can lift it.
			k.RetryAt = time.Time{}
		}
		k.RejectedAt, k.Rejected, k.HealBlocked = time.Time{}, false, ""
	case stscheck.Invalid:
		k.CheckedAt = now
		fallthrough
	default:
		k.VerifyError = now.UTC().Format(time.RFC3339) + ": " + res.String()
	}
	return next
}

// noteRejection records a rejection of r by AWS at t. The first starts a
// row; one a minute or more after it marks the key Rejected. It reports
// whether this rejection did.
func (r *Record) noteRejection(t time.Time) bool {
	if r.f.RejectedAt.IsZero() {
		r.f.RejectedAt = t
		return false
	}
	if !r.f.Rejected && !t.Before(r.f.RejectedAt.Add(RejectionConfirmAfter)) {
		r.f.Rejected = true
		return true
	}
	return false
}

func probed(r *Record, ev Probed, f Facts, now time.Time) (*Record, Effects) {
	if !r.Is(ev.Of) {
		return r, Effects{}
	}
	return r.withCheck(ev.Result, f.STSURL, now), Effects{Store: true}
}

func gracefulRequested(r *Record, ev GracefulRequested, now time.Time) (*Record, Effects) {
	if !r.HasKey() || !r.f.GracefulAt.IsZero() {
		return r, Effects{} // nothing to rotate, or it joins the pending one
	}
	next := copyOf(r)
	next.f.GracefulAt = now.Add(ev.After).Truncate(time.Second)
	eff := Effects{Store: true}
	eff.log(Info, "graceful rotation requested: consumers re-read every 2 s until it runs",
		"rotates_at", next.f.GracefulAt.Format(time.RFC3339))
	return next, eff
}

func walFound(r *Record, ev WALFound, now time.Time) (*Record, Effects) {
	next := copyOf(r)
	if next.f.SettledRotation == ev.ID {
		// This node knew the outcome; storage did not: store it.
		return next, Effects{Store: true}
	}
	started := ev.Started.UTC().Format(time.RFC3339)
	next.markFailed(fmt.Sprintf("a rotation started at %s did not finish (Vault stopped or storage failed): "+
		"Cisco may have replaced the key", started), now, true, true, 0)
	next.f.RetryAt = now // as soon as possible
	next.f.SettledRotation = ev.ID
	eff := Effects{Store: true, KeepUnstored: true,
		Notice: &Notice{Kind: NoticeRotateFail, Trigger: TriggerRecovery, Message: next.f.LastError}}
	eff.log(Error, LogKeyMayBeDead+": a rotation did not finish (its WAL entry outlived it); rotating as soon as possible", "started", started)
	return next, eff
}

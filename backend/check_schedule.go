package backend

// When a served key is next checked against AWS, as one function of the
// stored key and config: the routine interval, the re-checks after a stale
// episode, and the confirmation of a rejection. Rejections and their heal
// are decided here too, from the stored facts alone.

import (
	"hash/fnv"
	"time"
)

const (
	// defaultKeyCheckInterval is how often a served key is checked when
	// the config does not say.
	defaultKeyCheckInterval = time.Hour
	minKeyCheckInterval     = time.Minute
	// rejectionConfirmAfter is how long after a first rejection a second
	// one confirms that the key is dead: one rejection may be AWS's own
	// hiccup.
	rejectionConfirmAfter = time.Minute
	// unansweredRetry is how soon a routine check that got no answer is
	// tried again.
	unansweredRetry = 5 * time.Minute
	// healCooldown: a key that a heal stored and that dies again within it
	// is reported, not healed again: something else keeps rotating the
	// organization (a second config or API key), and healing would only
	// take turns killing each other's keys.
	healCooldown = 24 * time.Hour
)

// recheckOffsets are how long after a key came out of a stale episode (a
// lifted mark, or a key stored while its predecessor was stale) it is
// checked again: a Cisco call that timed out may still land and kill it.
var recheckOffsets = []time.Duration{5 * time.Minute, 15 * time.Minute}

// nextCheck is when name's served key is next checked on the schedule;
// false when nothing is to check: no key, a stale key (its recovery checks
// it), or key_check off. A check whose time has passed (missed while Vault
// was down, or without an answer) is due at once; the tick starts at most
// maxChecksPerTick, and STS's rate sends them.
func nextCheck(name string, cfg *orgConfig, k *keyState) (time.Time, bool) {
	if cfg.DisableKeyCheck || !k.hasKey() || k.Stale {
		return time.Time{}, false
	}
	var at time.Time
	ok := false
	consider := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	if k.RechecksDone < len(recheckOffsets) && !k.RecheckFrom.IsZero() {
		at := k.RecheckFrom.Add(recheckOffsets[k.RechecksDone])
		if !k.RejectedAt.IsZero() && !k.Rejected {
			// A re-check that rejected waits for the confirmation.
			at = later(at, k.RejectedAt.Add(rejectionConfirmAfter))
		}
		consider(at)
	}
	if !k.RejectedAt.IsZero() && !k.Rejected {
		consider(k.RejectedAt.Add(rejectionConfirmAfter))
	}
	if iv := cfg.checkInterval(); iv > 0 {
		consider(routineCheckAt(name, iv, k))
	}
	return at, ok
}

// routineCheckAt is when the interval next checks the key: in the second
// half of the interval after the last check that got an answer (or, before
// any, after the key was stored), at a phase of the name's own, so that the
// checks of many organizations spread over the interval instead of coming
// in one burst. A check that got no answer is tried again after
// unansweredRetry, not an interval later: the key may have died meanwhile.
// It never depends on the time it is asked: a tick that comes late finds
// the check still due, never moved.
func routineCheckAt(name string, iv time.Duration, k *keyState) time.Time {
	h := fnv.New64a()
	h.Write([]byte(name))
	half := iv / 2
	last := k.CheckedAt
	if last.IsZero() {
		last = k.LastVaultRotation
	}
	at := last.Add(iv - time.Duration(h.Sum64()%uint64(half)))
	if !k.CheckTriedAt.Before(at) {
		// Tried since it was due, without an answer.
		at = k.CheckTriedAt.Add(min(iv, unansweredRetry))
	}
	return at
}

// rechecksDue reports whether a check of k at t stands for re-checks whose
// time has come, and how many re-checks are then done: every one whose
// time had come, so that a long outage costs one check.
func rechecksDue(k *keyState, t time.Time) (int, bool) {
	if k.RecheckFrom.IsZero() || k.RechecksDone >= len(recheckOffsets) || k.RecheckFrom.Add(recheckOffsets[k.RechecksDone]).After(t) {
		return k.RechecksDone, false
	}
	n := k.RechecksDone
	for n < len(recheckOffsets) && !k.RecheckFrom.Add(recheckOffsets[n]).After(t) {
		n++
	}
	return n, true
}

// passedHere reports whether AWS accepted k before at the endpoint that
// checks it now: only such a key can be shown to have died. A key verified
// before the endpoint was recorded counts as verified here.
func (k *keyState) passedHere(cfg *orgConfig) bool {
	return !k.VerifiedAt.IsZero() && (k.VerifiedSTSURL == "" || k.VerifiedSTSURL == cfg.stsURL())
}

// noteRejection records a rejection of k by AWS at t. The first starts a
// row; one a minute or more after it marks the key Rejected. It reports
// whether this rejection did.
func (k *keyState) noteRejection(t time.Time) bool {
	if k.RejectedAt.IsZero() {
		k.RejectedAt = t
		return false
	}
	if !k.Rejected && !t.Before(k.RejectedAt.Add(rejectionConfirmAfter)) {
		k.Rejected = true
		return true
	}
	return false
}

// healedLately reports whether k's last check came within the storm
// guard: once a check comes after it, the heal runs.
func healedLately(k *keyState) bool { return stormGuarded(k, k.CheckedAt) }

// stormGuarded reports whether a heal stored the organization's key, or a
// re-check marked it stale again, less than healCooldown before t: the
// storm guard of heals and re-marks. A dashboard refresh or a late Cisco
// call kills a key once; a second death so soon is more likely a second
// config or API key rotating the organization, or a flapping STS, and is
// reported, not healed or re-marked.
func stormGuarded(k *keyState, t time.Time) bool {
	return !k.StormGuardFrom.IsZero() && t.Sub(k.StormGuardFrom) < healCooldown
}

// healDue is when a rejected key is rotated by the heal: at once, or at
// its retry after a failed heal. False when the key is not to be healed:
// heal off, a key AWS never accepted at this endpoint (it proves nothing
// about the key, and rotating it again would only repeat a broken STS's
// verdict), or a heal that was blocked.
func healDue(cfg *orgConfig, k *keyState) (time.Time, bool) {
	if !k.hasKey() || !k.Rejected || !cfg.heals() || !k.passedHere(cfg) || k.HealBlocked != "" || healedLately(k) {
		return time.Time{}, false
	}
	if !k.RetryAt.IsZero() {
		return k.RetryAt, true
	}
	return k.CheckedAt, true
}

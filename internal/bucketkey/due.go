package bucketkey

// When the key is due: the rotation (the period or schedule, the window,
// the 89-day cap, the backoff after a failure, a heal, a graceful request)
// and the checks against AWS (the routine interval, the re-checks after a
// stale episode, the confirmation of a rejection).

import (
	"hash/fnv"
	"time"
)

const (
	// KeyLifetime is Cisco's lockout: a key older than this stops working.
	KeyLifetime = 90 * 24 * time.Hour
	// MaxRotationGap is the longest a schedule may leave a key unrotated.
	MaxRotationGap = 89 * 24 * time.Hour

	minRetryBackoff = time.Minute
	// MaxRetryBackoff is the longest wait between two tries of a rotation.
	MaxRetryBackoff = time.Hour
	// lastDayBackoff caps the backoff in the last day before the lockout.
	lastDayBackoff = 5 * time.Minute

	// creationDateTolerance is how far Cisco's keyCreationDate may be from
	// the time the plugin rotated before the rotation time counts instead.
	creationDateTolerance = time.Hour

	// RejectionConfirmAfter is how long after a first rejection a second
	// one confirms that the key is dead: one rejection may be AWS's own
	// hiccup.
	RejectionConfirmAfter = time.Minute
	// unansweredRetry is how soon a routine check that got no answer is
	// tried again.
	unansweredRetry = 5 * time.Minute
	// HealCooldown is the storm guard's length: a key that a heal stored
	// and that dies again within it is reported, not healed again:
	// something else keeps rotating the organization (a second config or
	// API key), and healing would only take turns killing each other's
	// keys.
	HealCooldown = 24 * time.Hour
	// StaleCheckSettle is how long after a stale mark a check that passes
	// proves the key works: AWS may accept a key that Cisco replaced for
	// some seconds after the replacement.
	StaleCheckSettle = time.Minute
)

// RecheckOffsets are how long after a key came out of a stale episode (a
// lifted mark, or a key stored while its predecessor was stale) it is
// checked again: a Cisco call that timed out may still land and kill it.
var RecheckOffsets = []time.Duration{5 * time.Minute, 15 * time.Minute}

// IssuedAt is when the key's 90 days started: the earlier of Cisco's
// creation date and Vault's rotation, so an imported key counts from its
// true creation. For a key the plugin rotated, Cisco's date counts only
// when it is close to the rotation: a bogus date far in the past would
// make the key due again at once.
func (r *Record) IssuedAt() time.Time {
	created, rotated := r.f.KeyCreationDate, r.f.LastVaultRotation
	switch {
	case created.IsZero():
		return rotated
	case rotated.IsZero():
		return created
	case r.f.Origin == OriginRotation && !DatesAgree(created, rotated):
		return rotated
	case created.Before(rotated):
		return created
	}
	return rotated
}

// DatesAgree reports whether two instants are close enough for Cisco's
// keyCreationDate to count for a rotation made at the other.
func DatesAgree(a, b time.Time) bool {
	d := a.Sub(b)
	return -creationDateTolerance <= d && d <= creationDateTolerance
}

// ExpiresAt is Cisco's lockout of this key; zero when there is no key.
func (r *Record) ExpiresAt() time.Time {
	if !r.HasKey() {
		return time.Time{}
	}
	return r.IssuedAt().Add(KeyLifetime)
}

// NextRotation is when the key is due. It reports false when nothing is
// scheduled: automated rotation is off, or no key is stored.
func NextRotation(r *Record, f Facts, now time.Time) (time.Time, bool) {
	if r == nil || (!r.HasKey() && !r.f.Stale) {
		return time.Time{}, false
	}
	if r.f.Stale {
		// A possibly dead key is recovered whatever the settings: that
		// finishes a rotation that was already asked for.
		return r.f.RetryAt, true
	}
	if at, ok := HealDue(r, f); ok {
		// A dead key is healed whatever the rotation settings, unless
		// rotate_rejected_key is false.
		return at, true
	}
	if !r.f.GracefulAt.IsZero() {
		// Asked for: whatever the rotation settings; a failed attempt
		// retries with backoff.
		return later(r.f.GracefulAt, r.f.RetryAt), true
	}
	if !f.Automated {
		return time.Time{}, false
	}
	if !r.f.RetryAt.IsZero() {
		return retryInWindow(r, f, r.f.RetryAt), true
	}
	base := r.IssuedAt()
	var due time.Time
	if f.HasSchedule {
		// An unparsable stored schedule leaves due zero: the 89-day limit.
		if f.Schedule != nil {
			due = f.Schedule.Next(base)
			if f.Window > 0 && !due.Add(f.Window).After(now) {
				// The run's window closed: wait for the next run whose
				// window is still open.
				due = f.Schedule.Next(now.Add(-f.Window))
			}
		}
	} else {
		due = base.Add(f.Period)
	}
	// Never later than 89 days into the key's life, whatever the settings.
	if limit := base.Add(MaxRotationGap); due.IsZero() || due.After(limit) {
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
func retryInWindow(r *Record, f Facts, retry time.Time) time.Time {
	if f.Schedule == nil || f.Window <= 0 {
		return retry
	}
	run := f.Schedule.Next(retry.Add(-f.Window))
	if !run.After(retry) {
		return retry // inside the window of run
	}
	if limit := r.IssuedAt().Add(MaxRotationGap); run.After(limit) {
		run = limit
	}
	if run.Before(retry) {
		return retry
	}
	return run
}

// RetryBackoff is the wait before retry n (1-based): 1 min doubling to
// 1 h, plus up to 25% jitter (jitter is any random number), never above
// 1 h.
func RetryBackoff(n int, jitter uint64) time.Duration {
	d := minRetryBackoff
	for i := 1; i < n && d < MaxRetryBackoff; i++ {
		d *= 2
	}
	d += time.Duration(jitter % uint64(d/4))
	if d > MaxRetryBackoff {
		d = MaxRetryBackoff
	}
	return d
}

// NextCheck is when the served key is next checked on the schedule; false
// when nothing is to check: no key, a stale key (its recovery checks it),
// or key_check off. A check whose time has passed (missed while Vault was
// down, or without an answer) is due at once. name spreads the routine
// checks of many organizations over the interval.
func NextCheck(name string, r *Record, f Facts) (time.Time, bool) {
	if !f.KeyCheck || !r.HasKey() || r.f.Stale {
		return time.Time{}, false
	}
	var at time.Time
	ok := false
	consider := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	if r.f.RechecksDone < len(RecheckOffsets) && !r.f.RecheckFrom.IsZero() {
		at := r.f.RecheckFrom.Add(RecheckOffsets[r.f.RechecksDone])
		if !r.f.RejectedAt.IsZero() && !r.f.Rejected {
			// A re-check that rejected waits for the confirmation.
			at = later(at, r.f.RejectedAt.Add(RejectionConfirmAfter))
		}
		consider(at)
	}
	if !r.f.RejectedAt.IsZero() && !r.f.Rejected {
		consider(r.f.RejectedAt.Add(RejectionConfirmAfter))
	}
	if f.CheckInterval > 0 {
		consider(routineCheckAt(name, f.CheckInterval, r))
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
func routineCheckAt(name string, iv time.Duration, r *Record) time.Time {
	h := fnv.New64a()
	h.Write([]byte(name))
	half := iv / 2
	last := r.f.CheckedAt
	if last.IsZero() {
		last = r.f.LastVaultRotation
	}
	at := last.Add(iv - time.Duration(h.Sum64()%uint64(half)))
	if !r.f.CheckTriedAt.Before(at) {
		// Tried since it was due, without an answer.
		at = r.f.CheckTriedAt.Add(min(iv, unansweredRetry))
	}
	return at
}

// rechecksDue reports whether a check of r at t stands for re-checks whose
// time has come, and how many re-checks are then done: every one whose
// time had come, so that a long outage costs one check.
func rechecksDue(r *Record, t time.Time) (int, bool) {
	k := r.f
	if k.RecheckFrom.IsZero() || k.RechecksDone >= len(RecheckOffsets) || k.RecheckFrom.Add(RecheckOffsets[k.RechecksDone]).After(t) {
		return k.RechecksDone, false
	}
	n := k.RechecksDone
	for n < len(RecheckOffsets) && !k.RecheckFrom.Add(RecheckOffsets[n]).After(t) {
		n++
	}
	return n, true
}

// PassedAt reports whether AWS accepted the key before at stsURL, the
// endpoint that checks it now: only such a key can be shown to have died.
// A key verified before the endpoint was recorded counts as verified
// there.
func (r *Record) PassedAt(stsURL string) bool {
	return !r.f.VerifiedAt.IsZero() && (r.f.VerifiedSTSURL == "" || r.f.VerifiedSTSURL == stsURL)
}

// HealedLately reports whether the key's last check came within the storm
// guard: once a check comes after it, the heal runs.
func (r *Record) HealedLately() bool { return r.StormGuarded(r.f.CheckedAt) }

// StormGuarded reports whether a heal stored the organization's key, or a
// re-check marked it stale again, less than HealCooldown before t: the
// storm guard of heals and re-marks. A dashboard refresh or a late Cisco
// call kills a key once; a second death so soon is more likely a second
// config or API key rotating the organization, or a flapping STS, and is
// reported, not healed or re-marked.
func (r *Record) StormGuarded(t time.Time) bool {
	return !r.f.StormGuardFrom.IsZero() && t.Sub(r.f.StormGuardFrom) < HealCooldown
}

// HealDue is when a rejected key is rotated by the heal: at once, or at
// its retry after a failed heal. False when the key is not to be healed:
// heal off, a key AWS never accepted at this endpoint (it proves nothing
// about the key, and rotating it again would only repeat a broken STS's
// verdict), or a heal that was blocked.
func HealDue(r *Record, f Facts) (time.Time, bool) {
	if !r.HasKey() || !r.f.Rejected || !f.Heals || !r.PassedAt(f.STSURL) || r.f.HealBlocked != "" || r.HealedLately() {
		return time.Time{}, false
	}
	if !r.f.RetryAt.IsZero() {
		return r.f.RetryAt, true
	}
	return r.f.CheckedAt, true
}

// settledSinceMark reports whether a check of a stale key at t is late
// enough after the mark to be trusted.
func (r *Record) settledSinceMark(t time.Time) bool {
	return !t.Before(r.f.LastErrorTime.Add(StaleCheckSettle))
}

package bucketkey

// What an import of a key from Cisco's dashboard keeps of the key it
// replaces.

import (
	"encoding/json"
	"fmt"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// imported is the key an import stores over prev. Importing the very key
// that a stale mark is on proves nothing unless a late enough check showed
// that it works, so the mark stays; the record is then stale. A key stored
// while its predecessor was stale is re-checked, as a lifted key is: a
// Cisco call of the stale episode may still land.
func imported(prev *Record, ev Imported, f Facts, now time.Time) (*Record, Effects) {
	// Dates to the second: an import gives whole seconds, and a rotation
	// whose reply had no date stored the reply's time.
	if prev.HasKey() && prev.f.AccessKeyID == ev.Key.AccessKeyID && prev.f.SecretAccessKey == ev.Key.SecretAccessKey &&
		prev.f.KeyCreationDate.Truncate(time.Second).Equal(ev.Key.CreationDate.Truncate(time.Second)) {
		return reimported(prev, ev, f, now)
	}
	key := ev.Key
	// The id this key replaced; importing the served key again keeps it.
	if prev != nil {
		key.OldAccessKeyID = prev.f.AccessKeyID
		if prev.f.AccessKeyID == key.AccessKeyID {
			key.OldAccessKeyID = prev.f.OldAccessKeyID
		}
	}
	next := successor(prev, key, OriginImport, now)
	next.f.Trigger = OriginImport
	if prev != nil {
		// A pending graceful rotation ends only by a plain rotate or a
		// delete: an import, of the served key or another, keeps it.
		next.f.GracefulAt = prev.f.GracefulAt
	}
	next.f.StormGuardFrom = time.Time{} // an operator acted: the guard ends
	if ev.Check != nil {
		next = next.withCheck(*ev.Check, f.STSURL, now)
	}
	keptStale := keepStaleMark(prev, next, now)
	keepLiftRechecks(prev, next)
	if ev.Check == nil && prev != nil && prev.f.AccessKeyID == next.f.AccessKeyID && prev.f.SecretAccessKey == next.f.SecretAccessKey {
		// The very key again, unchecked: what AWS last said of it still
		// stands, a pass (which proves nothing about a stale mark, kept
		// above) and a rejection alike.
		p, k := &prev.f, &next.f
		k.VerifiedAt, k.VerifiedSTSURL, k.CheckedAt = p.VerifiedAt, p.VerifiedSTSURL, p.CheckedAt
		k.RejectedAt, k.Rejected, k.CheckResult, k.VerifyError = p.RejectedAt, p.Rejected, p.CheckResult, p.VerifyError
	}
	switch {
	case keptStale || prev == nil || !prev.f.Stale:
	case prev.f.AccessKeyID == next.f.AccessKeyID:
		// A proving check lifted the mark of the re-imported key.
		next.f.StaleCleared = fmt.Sprintf("%s: AWS STS accepted the re-imported key %s a minute or more after the stale mark, "+
			"so Cisco did not replace it; the mark (%s) was lifted", now.UTC().Format(time.RFC3339), next.f.AccessKeyID, prev.f.LastError)
		next.f.RecheckFrom, next.f.RechecksDone = now, 0
	default:
		next.f.RecheckFrom, next.f.RechecksDone = now, 0
	}
	eff := Effects{Store: true}
	eff.log(Info, "imported an S3 bucket key", "version", next.f.Version, "access_key_id", next.f.AccessKeyID)
	return next, eff
}

// keepStaleMark carries a stale mark over to an import of the very key it
// is on, unless a check late enough to prove anything showed that the key
// works: importing the key id that Cisco may have replaced proves nothing
// about it.
func keepStaleMark(prev, next *Record, now time.Time) bool {
	if prev == nil || !prev.f.Stale || prev.f.AccessKeyID != next.f.AccessKeyID {
		return false
	}
	if !prev.f.Replaced && !next.f.VerifiedAt.IsZero() && prev.settledSinceMark(now) {
		return false
	}
	p, k := &prev.f, &next.f
	k.Stale, k.LastError, k.LastErrorTime = true, p.LastError, p.LastErrorTime
	k.ConsecutiveFailures, k.RetryAt, k.Replaced = p.ConsecutiveFailures, p.RetryAt, p.Replaced
	return true
}

// keepLiftRechecks carries the re-checks of a lifted stale mark over to an
// import of the very key it was lifted from: importing the key proves
// nothing about a Cisco call that may still land.
func keepLiftRechecks(prev, next *Record) {
	if prev != nil && !prev.f.Stale && !prev.f.RecheckFrom.IsZero() && prev.f.AccessKeyID == next.f.AccessKeyID {
		next.f.StaleCleared, next.f.RecheckFrom, next.f.RechecksDone = prev.f.StaleCleared, prev.f.RecheckFrom, prev.f.RechecksDone
	}
}

// reimported is the served key imported again: no new version, and
// old_access_key_id still names the key before it. What an import does
// still happens: the operator acted, so the storm guard ends; a check is
// recorded; and a check late enough after a stale mark lifts it. A
// re-import that changes nothing stores nothing.
func reimported(prev *Record, ev Imported, f Facts, now time.Time) (*Record, Effects) {
	next := copyOf(prev)
	next.f.StormGuardFrom = time.Time{}
	if ev.Check != nil {
		next = next.withCheck(*ev.Check, f.STSURL, now)
	}
	if prev.f.Stale && !prev.f.Replaced && ev.Check != nil && ev.Check.Outcome == stscheck.Valid && prev.settledSinceMark(now) {
		// A proving check lifted the mark of the re-imported key.
		k := &next.f
		k.Stale, k.LastError, k.LastErrorTime, k.ConsecutiveFailures, k.RetryAt = false, "", time.Time{}, 0, time.Time{}
		k.StaleCleared = fmt.Sprintf("%s: AWS STS accepted the re-imported key %s a minute or more after the stale mark, "+
			"so Cisco did not replace it; the mark (%s) was lifted", now.UTC().Format(time.RFC3339), k.AccessKeyID, prev.f.LastError)
		k.RecheckFrom, k.RechecksDone = now, 0
	}
	var eff Effects
	if b1, b2 := mustJSON(prev), mustJSON(next); b1 == b2 {
		eff.log(Info, "imported the S3 bucket key that is already served: nothing to store", "version", prev.f.Version,
			"access_key_id", prev.f.AccessKeyID)
		return prev, eff
	}
	eff.Store = true
	eff.log(Info, "imported the S3 bucket key that is already served: recorded what the import changed", "version", next.f.Version,
		"access_key_id", next.f.AccessKeyID, "stale", next.f.Stale)
	return next, eff
}

// mustJSON is r's stored form, to compare two records.
func mustJSON(r *Record) string {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a record of strings, times and numbers always encodes
	}
	return string(b)
}

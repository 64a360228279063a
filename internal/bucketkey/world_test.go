package bucketkey

// The world of the property test: Cisco's current key, what STS says, and
// what happens next, the tick's work or a request or the world acting.

import (
	"fmt"
	"math/rand/v2"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// world is what is true outside the record: Cisco's current key, and what
// the plugin was told that proves the served key dead.
type world struct {
	rng       *rand.Rand
	now       time.Time
	f         Facts
	rec       *Record
	cisco     string // Cisco's current key id
	diedAt    map[string]time.Time
	knownDead bool // Cisco replaced the served key, and an event said so or may have
	flapping  bool // STS rejects keys that work half the time
	provedBy  string
	keys      int
	steps     []string

	confirmations, heals int
	lastHeal             time.Time
	operatorSinceHeal    bool
}

func (w *world) newKey() cisco.IssuedKey {
	w.keys++
	id := fmt.Sprintf("AKIALIFE%012d", w.keys)
	return cisco.IssuedKey{AccessKeyID: id, SecretAccessKey: fmt.Sprintf("SECRET-never-shown-%d", w.keys), CreationDate: w.now}
}

// replace makes id Cisco's current key: the one before dies now.
func (w *world) replace(id string) {
	if w.diedAt == nil {
		w.diedAt = map[string]time.Time{}
	}
	w.diedAt[w.cisco] = w.now
	w.cisco = id
}

func (w *world) served() string {
	if w.rec == nil {
		return ""
	}
	return w.rec.f.AccessKeyID
}

// checkResult is what STS says of the served key now: a dead key is never
// accepted; a working one is, unless STS gives no answer or lies.
func (w *world) checkResult() stscheck.Result {
	switch n := w.rng.IntN(10); {
	case n == 0:
		return stscheck.Result{Outcome: stscheck.Unknown, Reason: "no answer"}
	case w.served() != w.cisco && w.now.Sub(w.diedAt[w.served()]) < StaleCheckSettle && n < 5:
		// AWS accepts a replaced key for some seconds.
		return stscheck.Result{Outcome: stscheck.Valid, Account: "123456789012"}
	case w.served() != w.cisco || n == 1 || w.flapping && n < 6:
		return stscheck.Result{Outcome: stscheck.Invalid, Reason: "InvalidClientTokenId", Half: stscheck.HalfID}
	}
	return stscheck.Result{Outcome: stscheck.Valid, Account: "123456789012"}
}

// rotation is a Cisco call's outcome, as the world and the record see it.
func (w *world) rotation(trigger string) Event {
	switch n := w.rng.IntN(10); {
	case n < 6:
		k := w.newKey()
		w.replace(k.AccessKeyID)
		return Rotated{Issued: k, WALID: "wal", Trigger: trigger}
	case n < 7:
		k := w.newKey()
		w.replace(k.AccessKeyID)
		return Lost{IssuedID: k.AccessKeyID, Message: "lost " + k.AccessKeyID, Cause: "storage refused", WALID: "wal",
			Trigger: trigger, Jitter: w.rng.Uint64()}
	case n < 9:
		return Failed{Message: "Cisco refused", Trigger: trigger, WALID: "wal", Jitter: w.rng.Uint64()}
	}
	if w.rng.IntN(2) == 0 {
		w.replace(w.newKey().AccessKeyID) // it landed after all
	}
	return Failed{Message: "no reply", Ambiguous: true, Trigger: trigger, WALID: "wal", Jitter: w.rng.Uint64()}
}

// next picks what happens next: what the tick would do when something is
// due, else a request, a check or the world acting.
func (w *world) next() (Event, string) {
	if at, ok := HealDue(w.rec, w.f); ok && !at.After(w.now) && w.rng.IntN(2) == 0 {
		return w.rotation(TriggerHeal), "heal"
	}
	if at, ok := NextRotation(w.rec, w.f, w.now); ok && !at.After(w.now) && w.rng.IntN(2) == 0 {
		switch {
		case w.rec.Stale() && w.rng.IntN(2) == 0:
			return StaleChecked{Of: w.rec, Result: w.checkResult(), At: w.now}, "stale check"
		case w.rec.Stale():
			return w.rotation(TriggerRecovery), "recovery"
		case !w.rec.GracefulAt().IsZero():
			return w.rotation(TriggerGraceful), "graceful"
		}
		return w.rotation(TriggerScheduled), "scheduled"
	}
	switch n := w.rng.IntN(16); {
	case n < 4:
		return Checked{Of: w.rec, Result: w.checkResult(), At: w.now, Trigger: "scheduled"}, "check"
	case n < 5:
		// A check that started earlier answers now.
		return Checked{Of: w.rec, Result: w.checkResult(), At: w.now.Add(-time.Duration(w.rng.IntN(120)) * time.Second), Trigger: "verify"}, "late check"
	case n < 6:
		return Probed{Of: w.rec, Result: w.checkResult()}, "probe"
	case n < 7:
		return w.rotation(TriggerManual), "manual rotate"
	case n < 8:
		return GracefulRequested{After: 61 * time.Second}, "graceful request"
	case n < 9:
		// The operator imports what Cisco's dashboard shows, or the served key.
		k := cisco.IssuedKey{AccessKeyID: w.cisco, SecretAccessKey: "SECRET-dashboard-" + w.cisco, CreationDate: w.now.Add(-time.Minute)}
		if w.rng.IntN(3) == 0 && w.rec.HasKey() {
			k = cisco.IssuedKey{AccessKeyID: w.rec.f.AccessKeyID, SecretAccessKey: w.rec.f.SecretAccessKey, CreationDate: w.rec.f.KeyCreationDate}
		}
		if k.AccessKeyID == "" {
			return SettingsChanged{}, "settings changed"
		}
		var check *stscheck.Result
		if w.rng.IntN(2) == 0 {
			r := w.checkResult()
			if r.Outcome == stscheck.Invalid {
				return SettingsChanged{}, "settings changed" // a refused import stores nothing
			}
			check = &r
		}
		return Imported{Key: k, Check: check}, "import"
	case n < 10:
		// A rotation that Vault's crash cut off: Cisco may have replaced
		// the key when it started.
		// (An entry the record names as settled is one whose outcome this
		// node knew.)
		started, id := w.now.Add(-time.Duration(w.rng.IntN(60))*time.Second), fmt.Sprintf("wal-%d", w.rng.IntN(3))
		if w.rng.IntN(2) == 0 && w.rec.HasKey() && w.served() == w.cisco && w.rec.f.SettledRotation != id {
			w.replace(w.newKey().AccessKeyID)
			w.diedAt[w.served()] = started
			w.knownDead, w.provedBy = true, "a rotation cut off by a crash"
		}
		return WALFound{ID: id, Started: started}, "WAL found"
	case n < 11:
		return HealBlocked{Other: "other", Reason: "another config"}, "heal blocked"
	case n < 12:
		return SettingsChanged{}, "settings changed"
	case n < 13:
		return RemarkWAL{ID: "wal-r"}, "remark WAL"
	}
	return nil, "dashboard refresh"
}

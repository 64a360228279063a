package bucketkey

// Properties of the key's life over random event sequences. The world
// acts too: Cisco's dashboard refreshes the key without telling anyone,
// an ambiguous call may have rotated after all, and STS sometimes gives no
// answer or rejects a key that works.

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

var lifeSequences = flag.Int("bucketkey.sequences", 2000, "random event sequences TestStep_Properties runs")

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

func (w *world) fail(t *testing.T, format string, args ...interface{}) {
	t.Helper()
	t.Fatalf(format+"\nsteps:\n%s", append(args, strings.Join(w.steps, "\n"))...)
}

func jsonOf(r *Record) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestStep_Properties(t *testing.T) {
	for seed := uint64(0); seed < uint64(*lifeSequences); seed++ {
		w := &world{rng: rand.New(rand.NewPCG(seed, 0x11fe)), now: tableNow, f: tableFacts()}
		if w.rng.IntN(2) == 0 {
			w.f.Heals = false
		}
		for step := 0; step < 60; step++ {
			if w.rng.IntN(2) == 0 {
				w.now = w.now.Add(time.Duration(w.rng.IntN(90)) * time.Second)
			} else {
				w.now = w.now.Add(time.Duration(w.rng.IntN(40)) * time.Minute)
			}
			if w.rng.IntN(20) == 0 {
				w.now = w.now.Add(time.Duration(w.rng.IntN(3)) * 24 * time.Hour)
			}
			if w.rng.IntN(10) == 0 {
				w.flapping = !w.flapping
			}
			ev, what := w.next()
			if ev == nil {
				// Cisco's dashboard refreshes the key: nobody tells Vault.
				w.replace(w.newKey().AccessKeyID)
				w.steps = append(w.steps, fmt.Sprintf("%s %s", w.now.Format("01-02 15:04"), what))
				continue
			}
			prev, before := w.rec, jsonOf(w.rec)
			next, eff := Step(prev, ev, w.f, w.now)
			w.steps = append(w.steps, fmt.Sprintf("%s %s: %s → %s %s", w.now.Format("01-02 15:04"), what, prev.State(), next.State(), effectsText(eff)))
			if jsonOf(prev) != before {
				w.fail(t, "seed %d: Step changed its input record", seed)
			}
			w.check(t, seed, prev, next, ev, eff)
			w.rec = next
		}
	}
}

// check asserts the promises after one step.
func (w *world) check(t *testing.T, seed uint64, prev, next *Record, ev Event, eff Effects) {
	t.Helper()
	// Secrets never leave in a log line or an event.
	for _, l := range eff.Logs {
		if text := fmt.Sprint(l.Msg, l.KV); strings.Contains(text, "SECRET") {
			w.fail(t, "seed %d: a log line holds a secret: %s", seed, text)
		}
	}
	if eff.Notice != nil && strings.Contains(eff.Notice.Message, "SECRET") {
		w.fail(t, "seed %d: an event holds a secret", seed)
	}
	// Versions grow by one with each stored key, and only then.
	pv, nv := 0, 0
	if prev != nil {
		pv = prev.f.Version
	}
	if next != nil {
		nv = next.f.Version
	}
	reimport := false
	if imp, ok := ev.(Imported); ok && prev.HasKey() {
		reimport = imp.Key.AccessKeyID == prev.f.AccessKeyID && imp.Key.SecretAccessKey == prev.f.SecretAccessKey &&
			imp.Key.CreationDate.Equal(prev.f.KeyCreationDate)
	}
	switch ev.(type) {
	case Imported:
		if reimport && (nv != pv || next.f.OldAccessKeyID != prev.f.OldAccessKeyID) {
			w.fail(t, "seed %d: a re-import of the served key stored version %d after %d, old id %s", seed, nv, pv, next.f.OldAccessKeyID)
		}
		if !reimport && nv != pv+1 {
			w.fail(t, "seed %d: a new key is version %d after %d", seed, nv, pv)
		}
	case Rotated:
		if nv != pv+1 {
			w.fail(t, "seed %d: a new key is version %d after %d", seed, nv, pv)
		}
	default:
		if nv != pv {
			w.fail(t, "seed %d: %T changed the version %d→%d", seed, ev, pv, nv)
		}
	}
	if next != nil && next.f.Replaced && !next.f.Stale {
		w.fail(t, "seed %d: replaced but not stale", seed)
	}
	// A record that changed is stored, unless it only names a WAL entry.
	if _, remark := ev.(RemarkWAL); !remark && jsonOf(next) != jsonOf(prev) && !eff.Store {
		w.fail(t, "seed %d: %T changed the record without storing it", seed, ev)
	}

	// The outcome of a rotation's WAL entry is named on the record, so that
	// no restart takes the entry for an unknown outcome; an entry whose
	// outcome the record names changes nothing but its storing.
	switch ev := ev.(type) {
	case Rotated:
		if next.f.SettledRotation != ev.WALID {
			w.fail(t, "seed %d: a rotation's key does not name its WAL entry", seed)
		}
	case Lost:
		if next.f.SettledRotation != ev.WALID {
			w.fail(t, "seed %d: a lost key's mark does not name its WAL entry", seed)
		}
	case Failed:
		if ev.WALID != "" && next.f.SettledRotation != ev.WALID {
			w.fail(t, "seed %d: a failure does not name its WAL entry", seed)
		}
	case WALFound:
		if prev != nil && prev.f.SettledRotation == ev.ID && (jsonOf(next) != jsonOf(prev) || eff.Notice != nil || !eff.Store) {
			w.fail(t, "seed %d: a WAL entry whose outcome the record names changed it, or was not stored", seed)
		}
		if next.f.SettledRotation != ev.ID || !next.f.Stale && prev.f.SettledRotation != ev.ID {
			w.fail(t, "seed %d: an unknown outcome did not mark the key stale", seed)
		}
	case Checked:
		if prev != nil && ev.At.Before(prev.f.CheckTriedAt) && jsonOf(next) != jsonOf(prev) {
			w.fail(t, "seed %d: a check older than the last one changed the record", seed)
		}
	}
	// Every failed rotation is reported, with its trigger.
	switch ev := ev.(type) {
	case Failed:
		if eff.Notice == nil || eff.Notice.Kind != NoticeRotateFail || eff.Notice.Trigger != ev.Trigger || eff.Count != CountFailure {
			w.fail(t, "seed %d: a failed rotation was not reported as one: %+v", seed, eff)
		}
	case Lost:
		if eff.Notice == nil || eff.Notice.Kind != NoticeRotateFail || eff.Notice.Trigger != ev.Trigger || eff.Count != CountLost {
			w.fail(t, "seed %d: a lost key was not reported: %+v", seed, eff)
		}
	case Rotated:
		if eff.Notice == nil || eff.Notice.Kind != NoticeRotate || eff.Notice.Trigger != ev.Trigger || eff.Count != CountSuccess {
			w.fail(t, "seed %d: a rotation was not reported: %+v", seed, eff)
		}
	}
	// An ambiguous heal may have rotated: nothing heals again for a day.
	if f, ok := ev.(Failed); ok && f.Ambiguous && f.Trigger == TriggerHeal && !next.StormGuarded(w.now) {
		w.fail(t, "seed %d: an ambiguous heal left no storm guard", seed)
	}
	// A blocked heal is lifted once the other config is gone.
	if c, ok := ev.(Checked); ok && next != nil && next.f.HealBlocked != "" && next.Is(c.Of) && !c.At.Before(prev.f.CheckTriedAt) && !next.f.Stale {
		w.fail(t, "seed %d: a check with no other config left the heal blocked", seed)
	}

	// What proves the served key dead: a lost key, an ambiguous call.
	switch ev := ev.(type) {
	case Lost:
		w.knownDead, w.provedBy = true, "a lost key"
	case Failed:
		if ev.Ambiguous && w.served() != w.cisco {
			w.knownDead, w.provedBy = true, "an ambiguous call that landed"
		}
	case Rotated:
		w.knownDead = false
	case Imported:
		if ev.Key.AccessKeyID == w.cisco {
			w.knownDead = false
		}
	}
	if w.knownDead && next.State() == Current {
		w.fail(t, "seed %d: after %s, the dead key %s is current", seed, w.provedBy, next.f.AccessKeyID)
	}
	// Never current after an event that proves Cisco replaced the key:
	// only a new key ends a replaced state.
	if prev.State() == Replaced && next.State() != Replaced {
		_, rotated := ev.(Rotated)
		imp, imported := ev.(Imported)
		if !rotated && !(imported && imp.Key.AccessKeyID != prev.f.AccessKeyID) {
			w.fail(t, "seed %d: %T ended a replaced state without a new key", seed, ev)
		}
	}
	// A stale key's recovery is never far, and always has its time: reads
	// show it, and the lift waits for it.
	if next.State() == Stale || next.State() == Replaced {
		if next.f.RetryAt.IsZero() {
			w.fail(t, "seed %d: %T left a stale key without its recovery's time", seed, ev)
		}
		if at, ok := NextRotation(next, w.f, w.now); !ok || at.After(w.now.Add(MaxRetryBackoff+MaxRetryBackoff/4)) {
			w.fail(t, "seed %d: a stale key's recovery is at %v (%v), more than the longest backoff away", seed, at, ok)
		}
	}
	// At most one heal per confirmed rejection, and none within a day of
	// the last unless an operator acted.
	if (prev == nil || !prev.f.Rejected) && next != nil && next.f.Rejected {
		w.confirmations++
	}
	if r, ok := ev.(Rotated); ok {
		switch r.Trigger {
		case TriggerHeal:
			w.heals++
			if w.heals > w.confirmations {
				w.fail(t, "seed %d: %d heals for %d confirmed rejections", seed, w.heals, w.confirmations)
			}
			if !w.lastHeal.IsZero() && !w.operatorSinceHeal && w.now.Sub(w.lastHeal) < HealCooldown {
				w.fail(t, "seed %d: a second heal %v after the last", seed, w.now.Sub(w.lastHeal))
			}
			w.lastHeal, w.operatorSinceHeal = w.now, false
		case TriggerManual:
			w.operatorSinceHeal = true
		}
	}
	if _, ok := ev.(Imported); ok {
		w.operatorSinceHeal = true
	}
	// A pending graceful rotation ends only with a new key from a rotation.
	if prev != nil && !prev.f.GracefulAt.IsZero() && (next == nil || next.f.GracefulAt.IsZero()) {
		if _, ok := ev.(Rotated); !ok {
			w.fail(t, "seed %d: %T dropped a pending graceful rotation", seed, ev)
		}
	}
}

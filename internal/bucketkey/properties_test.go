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
)

var lifeSequences = flag.Int("bucketkey.sequences", 2000, "random event sequences TestStep_Properties runs")

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
			imp.Key.CreationDate.Truncate(time.Second).Equal(prev.f.KeyCreationDate.Truncate(time.Second))
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

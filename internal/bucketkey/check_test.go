package bucketkey

import (
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// A rejected key whose heal (or a manual rotate) failed ambiguously is
// stale: a pass that a check records then must not take away its
// recovery's time. Before, the pass cleared RetryAt, which is only right
// for the retry of a heal that failed definitely: reads then showed no next
// rotation for a stale key, and the settle wait before the lift was gone.
func TestCheck_PassKeepsAStaleKeysRecovery(t *testing.T) {
	f := tableFacts()
	T := tableNow
	rejected := rejectedFixture(func(edit func(k *fields)) *Record {
		r := checkedKey(T.Add(-time.Hour))
		r.f.VerifiedSTSURL = f.STSURL
		edit(&r.f)
		return r
	})
	stale, _ := Step(rejected, Failed{Message: "no reply", Ambiguous: true, Trigger: TriggerHeal, WALID: "wal-1"}, f, T)
	if !stale.Stale() || !stale.Rejected() || stale.RetryAt().IsZero() {
		t.Fatalf("an ambiguous heal: stale %v, rejected %v, retry %v", stale.Stale(), stale.Rejected(), stale.RetryAt())
	}
	valid := stscheck.Result{Outcome: stscheck.Valid, Account: "123456789012"}
	for name, ev := range map[string]Event{
		"probe":           Probed{Of: stale, Result: valid},
		"scheduled check": Checked{Of: stale, Result: valid, At: T.Add(10 * time.Second), Trigger: "scheduled"},
	} {
		next, _ := Step(stale, ev, f, T.Add(10*time.Second))
		if !next.Stale() || !next.RetryAt().Equal(stale.RetryAt()) {
			t.Errorf("%s passed: stale %v, retry %v, want stale with its retry at %v", name, next.Stale(), next.RetryAt(), stale.RetryAt())
		}
	}
	// A heal that failed definitely is not retried on a key that works.
	refused, _ := Step(rejected, Failed{Message: "Cisco refused", Trigger: TriggerHeal, WALID: "wal-1"}, f, T)
	next, _ := Step(refused, Checked{Of: refused, Result: valid, At: T.Add(time.Minute), Trigger: "scheduled"}, f, T.Add(time.Minute))
	if !next.RetryAt().IsZero() || next.Rejected() {
		t.Fatalf("a pass after a refused heal: retry %v, rejected %v", next.RetryAt(), next.Rejected())
	}
}

package bucketkey

import (
	"fmt"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func checkedKey(at time.Time) *Record {
	return &Record{f: fields{AccessKeyID: "AKIAEXAMPLE0000001", Version: 1, LastVaultRotation: at.Add(-time.Hour),
		CheckTriedAt: at, CheckedAt: at, VerifiedAt: at, CheckResult: stscheck.Valid}}
}

// intervalFacts are the facts of a config with key checks every iv, and
// the defaults otherwise.
func intervalFacts(iv time.Duration) Facts {
	return Facts{STSURL: "https://sts.amazonaws.com", KeyCheck: true, Heals: true, Automated: true,
		Period: 60 * 24 * time.Hour, CheckInterval: iv}
}

func scheduleFacts(t *testing.T, spec string, window time.Duration) Facts {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := intervalFacts(time.Hour)
	f.HasSchedule, f.Schedule, f.Window = true, s, window
	return f
}

// Automated rotation can never leave a key past 89 days, even when a
// schedule's window keeps being missed.
func TestNextRotation_NeverPastTheLockout(t *testing.T) {
	f := intervalFacts(time.Hour)
	f.Period = 89*24*time.Hour + 23*time.Hour
	k := &Record{f: fields{AccessKeyID: "AKIAEXAMPLE000000001", KeyCreationDate: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	next, ok := NextRotation(k, f, k.KeyCreationDate())
	if !ok || next.After(k.KeyCreationDate().Add(MaxRotationGap)) {
		t.Fatalf("next = %v", next)
	}
	f = scheduleFacts(t, "0 3 1 * *", time.Hour)
	now := k.KeyCreationDate().Add(88 * 24 * time.Hour)
	next, _ = NextRotation(k, f, now)
	if next.After(k.KeyCreationDate().Add(MaxRotationGap)) {
		t.Fatalf("schedule pushed the rotation to %v, past 89 days", next)
	}
}

func TestRetryBackoff_Sequence(t *testing.T) {
	for n, base := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
		for i := 0; i < 50; i++ {
			d := RetryBackoff(n+1, uint64(i)*0x9e3779b97f4a7c15)
			if d < base || d > base+base/4 || d > time.Hour {
				t.Fatalf("retry %d waits %v, want within [%v, %v] and at most 1h", n+1, d, base, min(base+base/4, time.Hour))
			}
		}
	}
}

// Retries of a definite failure stay inside the schedule's window, or wait
// for the next run, and never go past the 89-day limit; a stale key is
// recovered at once.
func TestNextRotation_RetriesStayInsideTheWindow(t *testing.T) {
	monday3 := time.Date(2026, 1, 12, 3, 0, 0, 0, time.UTC)
	f := scheduleFacts(t, "0 3 * * 1", time.Hour)
	k := &Record{f: fields{AccessKeyID: "AKIAEXAMPLE000000001", KeyCreationDate: monday3.AddDate(0, 0, -7), LastVaultRotation: monday3.AddDate(0, 0, -7)}}
	cases := map[string]struct {
		retry time.Time
		stale bool
		want  time.Time
	}{
		"inside the window":              {monday3.Add(31 * time.Minute), false, monday3.Add(31 * time.Minute)},
		"after the window: next run":     {monday3.Add(65 * time.Minute), false, monday3.AddDate(0, 0, 7)},
		"stale keys recover at once":     {monday3.Add(65 * time.Minute), true, monday3.Add(65 * time.Minute)},
		"never past the 89-day limit":    {k.IssuedAt().Add(MaxRotationGap - time.Hour), false, k.IssuedAt().Add(MaxRotationGap)},
		"a retry at the limit stays put": {k.IssuedAt().Add(MaxRotationGap + time.Hour), false, k.IssuedAt().Add(MaxRotationGap + time.Hour)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kk := *k
			kk.f.RetryAt, kk.f.Stale = tc.retry, tc.stale
			if name == "never past the 89-day limit" || name == "a retry at the limit stays put" {
				// Only the limit matters here: a schedule whose next run is far.
				kk.f.KeyCreationDate = monday3.AddDate(0, 0, -88)
				kk.f.LastVaultRotation = kk.KeyCreationDate()
				kk.f.RetryAt = kk.IssuedAt().Add(tc.retry.Sub(k.IssuedAt()))
				tc.want = kk.IssuedAt().Add(tc.want.Sub(k.IssuedAt()))
			}
			got, ok := NextRotation(&kk, f, monday3)
			if !ok || !got.Equal(tc.want) {
				t.Fatalf("next = %v, want %v", got, tc.want)
			}
		})
	}
}

// In the last day before the lockout a failed rotation is retried within
// lastDayBackoff, never after an hour-long wait.
func TestMarkFailed_LastDayBackoffIsShort(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &Record{f: fields{AccessKeyID: "AKIAEXAMPLE000000001", KeyCreationDate: created, LastVaultRotation: created, ConsecutiveFailures: 10}}
	now := created.Add(KeyLifetime - 20*time.Hour)
	k.markFailed("Cisco: Internal error", now, false, true, ^uint64(0))
	if wait := k.RetryAt().Sub(now); wait > lastDayBackoff {
		t.Fatalf("a retry 20 h before the lockout waits %v", wait)
	}
}

// A key is checked once an interval, in the second half of it after the
// last check (before any, after the key was stored), at a phase of its own;
// the due time never depends on when it is asked, so a late tick finds the
// check still due.
func TestNextCheck_RoutineInterval(t *testing.T) {
	f := intervalFacts(time.Hour)
	k := checkedKey(t0)
	at, ok := NextCheck("acme", k, f)
	if !ok || !at.After(t0.Add(30*time.Minute)) || at.After(t0.Add(time.Hour)) {
		t.Fatalf("next check %v (ok %v), want in the second half of the hour after %v", at, ok, t0)
	}
	never := &Record{f: fields{AccessKeyID: "AKIAEXAMPLE0000001", Version: 1, LastVaultRotation: t0}}
	if first, _ := NextCheck("acme", never, f); !first.After(t0.Add(30*time.Minute)) || first.After(t0.Add(time.Hour)) {
		t.Fatalf("first check of a key stored at %v is at %v", t0, first)
	}
	if _, ok := NextCheck("acme", k, intervalFacts(0)); ok {
		t.Fatal("key_check_interval=0 still schedules a routine check")
	}
	f.KeyCheck = false
	if _, ok := NextCheck("acme", k, f); ok {
		t.Fatal("key_check=false still schedules a check")
	}
}

// 10,000 organizations whose keys were checked at one instant (a restart,
// an upgrade's first round) spread their next checks over half the
// interval instead of checking in one burst.
func TestNextCheck_ManyOrganizationsSpread(t *testing.T) {
	f := intervalFacts(time.Hour)
	buckets := make([]int, 30)
	for i := 0; i < 10000; i++ {
		at, ok := NextCheck(fmt.Sprintf("org-%05d", i), checkedKey(t0), f)
		if !ok {
			t.Fatal("no check scheduled")
		}
		buckets[int((at.Sub(t0.Add(30*time.Minute))-time.Nanosecond)/time.Minute)]++
	}
	for minute, n := range buckets {
		if n > 2*10000/30 {
			t.Fatalf("%d of 10,000 checks fall in minute %d of the half hour: a burst", n, minute)
		}
	}
}

// The re-checks after a stale episode, and the confirmation of a
// rejection, come before the routine check.
func TestNextCheck_RechecksAndConfirmation(t *testing.T) {
	f := intervalFacts(time.Hour)
	k := checkedKey(t0)
	k.f.RecheckFrom = t0
	if at, _ := NextCheck("acme", k, f); !at.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("first re-check at %v, want 5 minutes after", at)
	}
	if n, due := rechecksDue(k, t0.Add(20*time.Minute)); !due || n != 2 {
		t.Fatalf("a check 20 minutes after stands for %d re-checks (due %v), want both", n, due)
	}
	k.f.RechecksDone = 1
	if at, _ := NextCheck("acme", k, f); !at.Equal(t0.Add(15 * time.Minute)) {
		t.Fatalf("second re-check at %v, want 15 minutes after", at)
	}
	k.f.RechecksDone = 2
	k.f.RejectedAt = t0.Add(10 * time.Minute)
	if at, _ := NextCheck("acme", k, f); !at.Equal(t0.Add(11 * time.Minute)) {
		t.Fatalf("confirmation at %v, want a minute after the first rejection", at)
	}
	k.f.Stale = true
	if _, ok := NextCheck("acme", k, f); ok {
		t.Fatal("a stale key is checked on the schedule; its recovery checks it")
	}
}

// A rejection confirms a key dead only a minute or more after the first,
// and a pass ends the row.
func TestNoteRejection(t *testing.T) {
	k := checkedKey(t0)
	if k.noteRejection(t0) || k.Rejected() {
		t.Fatal("one rejection marked the key rejected")
	}
	if k.noteRejection(t0.Add(59*time.Second)) || k.Rejected() {
		t.Fatal("a second rejection within a minute marked the key rejected")
	}
	if !k.noteRejection(t0.Add(time.Minute)) || !k.Rejected() {
		t.Fatal("a second rejection a minute later did not mark the key rejected")
	}
	passed := k.withCheck(stscheck.Result{Outcome: stscheck.Valid}, "https://sts.example", t0.Add(2*time.Minute))
	if passed.Rejected() || !passed.RejectedAt().IsZero() {
		t.Fatal("a pass did not end the row of rejections")
	}
	unknown := k.withCheck(stscheck.Result{Outcome: stscheck.Unknown}, "https://sts.example", t0.Add(2*time.Minute))
	if !unknown.Rejected() {
		t.Fatal("a check without an answer lifted the rejection")
	}
}

// Only a key that AWS accepted before, at the endpoint that rejects it
// now, is healed; and not with the heal off or blocked.
func TestHealDue(t *testing.T) {
	f := intervalFacts(time.Hour)
	f.STSURL = "https://sts.example"
	rejected := func(edit func(k *Record)) *Record {
		k := checkedKey(t0)
		k.f.VerifiedSTSURL = "https://sts.example"
		k.f.RejectedAt, k.f.Rejected, k.f.CheckedAt = t0.Add(time.Minute), true, t0.Add(2*time.Minute)
		if edit != nil {
			edit(k)
		}
		return k
	}
	if at, ok := HealDue(rejected(nil), f); !ok || !at.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("a rejected key that passed here is healed at %v (%v), want at its confirmation", at, ok)
	}
	if at, ok := NextRotation(rejected(nil), f, t0.Add(3*time.Minute)); !ok || at.After(t0.Add(3*time.Minute)) {
		t.Fatal("the heal does not make the key due")
	}
	cases := map[string]struct {
		facts func(f Facts) Facts
		edit  func(k *Record)
	}{
		"never passed":          {edit: func(k *Record) { k.f.VerifiedAt = time.Time{} }},
		"passed at another STS": {edit: func(k *Record) { k.f.VerifiedSTSURL = "https://other.example" }},
		"heal blocked":          {edit: func(k *Record) { k.f.HealBlocked = "shared" }},
		"not yet confirmed":     {edit: func(k *Record) { k.f.Rejected = false }},
		"heal off":              {facts: func(f Facts) Facts { f.Heals = false; return f }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ff := f
			if tc.facts != nil {
				ff = tc.facts(f)
			}
			if _, ok := HealDue(rejected(tc.edit), ff); ok {
				t.Fatal("healed")
			}
		})
	}
	// With automation off the heal still rotates; it has its own switch.
	manual := f
	manual.Automated = false
	if _, ok := NextRotation(rejected(nil), manual, t0); !ok {
		t.Fatal("disable_automated_rotation stopped the heal")
	}
}

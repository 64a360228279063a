package backend

import (
	"fmt"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func checkedKey(at time.Time) *keyState {
	return &keyState{AccessKeyID: "AKIAEXAMPLE0000001", Version: 1, LastVaultRotation: at.Add(-time.Hour),
		CheckTriedAt: at, CheckedAt: at, VerifiedAt: at, CheckResult: stscheck.Valid}
}

func intervalConfig(iv time.Duration) *orgConfig {
	cfg := newConfig()
	cfg.Provider = providerUmbrella
	cfg.KeyCheckInterval = &iv
	return cfg
}

// A key is checked once an interval, in the second half of it after the
// last check (before any, after the key was stored), at a phase of its own;
// the due time never depends on when it is asked, so a late tick finds the
// check still due.
func TestNextCheck_RoutineInterval(t *testing.T) {
	cfg := intervalConfig(time.Hour)
	k := checkedKey(t0)
	at, ok := nextCheck("acme", cfg, k)
	if !ok || !at.After(t0.Add(30*time.Minute)) || at.After(t0.Add(time.Hour)) {
		t.Fatalf("next check %v (ok %v), want in the second half of the hour after %v", at, ok, t0)
	}
	never := &keyState{AccessKeyID: "AKIAEXAMPLE0000001", Version: 1, LastVaultRotation: t0}
	if first, _ := nextCheck("acme", cfg, never); !first.After(t0.Add(30*time.Minute)) || first.After(t0.Add(time.Hour)) {
		t.Fatalf("first check of a key stored at %v is at %v", t0, first)
	}
	off := intervalConfig(0)
	if _, ok := nextCheck("acme", off, k); ok {
		t.Fatal("key_check_interval=0 still schedules a routine check")
	}
	cfg.DisableKeyCheck = true
	if _, ok := nextCheck("acme", cfg, k); ok {
		t.Fatal("key_check=false still schedules a check")
	}
}

// 10,000 organizations whose keys were checked at one instant (a restart,
// an upgrade's first round) spread their next checks over half the
// interval instead of checking in one burst.
func TestNextCheck_ManyOrganizationsSpread(t *testing.T) {
	cfg := intervalConfig(time.Hour)
	buckets := make([]int, 30)
	for i := 0; i < 10000; i++ {
		at, ok := nextCheck(fmt.Sprintf("org-%05d", i), cfg, checkedKey(t0))
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
	cfg := intervalConfig(time.Hour)
	k := checkedKey(t0)
	k.RecheckFrom = t0
	if at, _ := nextCheck("acme", cfg, k); !at.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("first re-check at %v, want 5 minutes after", at)
	}
	if n, due := rechecksDue(k, t0.Add(20*time.Minute)); !due || n != 2 {
		t.Fatalf("a check 20 minutes after stands for %d re-checks (due %v), want both", n, due)
	}
	k.RechecksDone = 1
	if at, _ := nextCheck("acme", cfg, k); !at.Equal(t0.Add(15 * time.Minute)) {
		t.Fatalf("second re-check at %v, want 15 minutes after", at)
	}
	k.RechecksDone = 2
	k.RejectedAt = t0.Add(10 * time.Minute)
	if at, _ := nextCheck("acme", cfg, k); !at.Equal(t0.Add(11 * time.Minute)) {
		t.Fatalf("confirmation at %v, want a minute after the first rejection", at)
	}
	k.Stale = true
	if _, ok := nextCheck("acme", cfg, k); ok {
		t.Fatal("a stale key is checked on the schedule; its recovery checks it")
	}
}

// A rejection confirms a key dead only a minute or more after the first,
// and a pass ends the row.
func TestNoteRejection(t *testing.T) {
	k := checkedKey(t0)
	if k.noteRejection(t0) || k.Rejected {
		t.Fatal("one rejection marked the key rejected")
	}
	if k.noteRejection(t0.Add(59*time.Second)) || k.Rejected {
		t.Fatal("a second rejection within a minute marked the key rejected")
	}
	if !k.noteRejection(t0.Add(time.Minute)) || !k.Rejected {
		t.Fatal("a second rejection a minute later did not mark the key rejected")
	}
	passed := k.withCheck(stscheck.Result{Outcome: stscheck.Valid}, "https://sts.example", t0.Add(2*time.Minute))
	if passed.Rejected || !passed.RejectedAt.IsZero() {
		t.Fatal("a pass did not end the row of rejections")
	}
	unknown := k.withCheck(stscheck.Result{Outcome: stscheck.Unknown}, "https://sts.example", t0.Add(2*time.Minute))
	if !unknown.Rejected {
		t.Fatal("a check without an answer lifted the rejection")
	}
}

// Only a key that AWS accepted before, at the endpoint that rejects it
// now, is healed; and not with the heal off or blocked.
func TestHealDue(t *testing.T) {
	cfg := intervalConfig(time.Hour)
	cfg.STSURL = "https://sts.example"
	rejected := func(edit func(k *keyState)) *keyState {
		k := checkedKey(t0)
		k.VerifiedSTSURL = "https://sts.example"
		k.RejectedAt, k.Rejected, k.CheckedAt = t0.Add(time.Minute), true, t0.Add(2*time.Minute)
		if edit != nil {
			edit(k)
		}
		return k
	}
	if at, ok := healDue(cfg, rejected(nil)); !ok || !at.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("a rejected key that passed here is healed at %v (%v), want at its confirmation", at, ok)
	}
	if at, ok := nextRotation(cfg, rejected(nil), t0.Add(3*time.Minute)); !ok || at.After(t0.Add(3*time.Minute)) {
		t.Fatal("the heal does not make the key due")
	}
	cases := map[string]struct {
		cfg  func(c orgConfig) *orgConfig
		edit func(k *keyState)
	}{
		"never passed":            {edit: func(k *keyState) { k.VerifiedAt = time.Time{} }},
		"passed at another STS":   {edit: func(k *keyState) { k.VerifiedSTSURL = "https://other.example" }},
		"heal blocked":            {edit: func(k *keyState) { k.HealBlocked = "shared" }},
		"not yet confirmed":       {edit: func(k *keyState) { k.Rejected = false }},
		"rotate_rejected_key off": {cfg: func(c orgConfig) *orgConfig { c.KeepRejectedKey = true; return &c }},
		"key_check off":           {cfg: func(c orgConfig) *orgConfig { c.DisableKeyCheck = true; return &c }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				c = tc.cfg(*cfg)
			}
			if _, ok := healDue(c, rejected(tc.edit)); ok {
				t.Fatal("healed")
			}
		})
	}
	// With automation off the heal still rotates; it has its own switch.
	manual := *cfg
	manual.DisableAutomatedRotation = true
	if _, ok := nextRotation(&manual, rejected(nil), t0); !ok {
		t.Fatal("disable_automated_rotation stopped the heal")
	}
}

// A key stored while its predecessor was stale is re-checked: a Cisco
// call of the stale episode may still land. So is a re-imported key whose
// mark a check lifted; a re-import of a key whose mark stays is not.
func TestImportedSuccessor_RechecksAfterAStaleEpisode(t *testing.T) {
	now := t0.Add(time.Hour)
	stale := checkedKey(t0)
	stale.markFailed("outcome unknown", t0, true, true)
	other := cisco.IssuedKey{AccessKeyID: "AKIAEXAMPLE0000002", SecretAccessKey: "secretsecretsecret02", CreationDate: now}
	next, kept := importedSuccessor(stale, other, nil, "https://sts.example", now)
	if kept || !next.RecheckFrom.Equal(now) || next.RechecksDone != 0 {
		t.Fatalf("a new key imported over a stale mark: kept %v, recheck from %v", kept, next.RecheckFrom)
	}
	same := cisco.IssuedKey{AccessKeyID: stale.AccessKeyID, SecretAccessKey: "secretsecretsecret01", CreationDate: t0}
	next, kept = importedSuccessor(stale, same, nil, "https://sts.example", now)
	if !kept || !next.RecheckFrom.IsZero() {
		t.Fatalf("an unchecked re-import of the stale key: kept %v, recheck from %v", kept, next.RecheckFrom)
	}
	valid := stscheck.Result{Outcome: stscheck.Valid}
	next, kept = importedSuccessor(stale, same, &valid, "https://sts.example", now)
	if kept || !next.RecheckFrom.Equal(now) || next.StaleCleared == "" {
		t.Fatalf("a proven re-import of the stale key: kept %v, recheck from %v", kept, next.RecheckFrom)
	}
	fresh := checkedKey(t0)
	next, _ = importedSuccessor(fresh, other, nil, "https://sts.example", now)
	if !next.RecheckFrom.IsZero() {
		t.Fatal("an import over a healthy key is re-checked as if out of a stale episode")
	}
}

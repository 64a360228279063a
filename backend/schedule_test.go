package backend

import (
	"strings"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

func FuzzParseRotationSchedule(f *testing.F) {
	for _, s := range []string{"0 3 1 * *", "* * * * *", "0 0 29 2 *", "@monthly", "0 3 1 */3 *"} {
		f.Add(s)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		sched, err := parseRotationSchedule(s, from)
		if err != nil {
			return
		}
		// An accepted schedule never leaves more than 89 days between runs.
		prev := sched.Next(from)
		for i := 0; i < 20; i++ {
			next := sched.Next(prev)
			if next.IsZero() || next.Sub(prev) > maxRotationGap {
				t.Fatalf("%q: gap %v after %v", s, next.Sub(prev), prev)
			}
			prev = next
		}
	})
}

func TestScheduler_NeverPastTheLockout(t *testing.T) {
	// Automated rotation can never leave a key past 89 days, even when a
	// schedule's window keeps being missed.
	cfg := &orgConfig{RotationPeriod: 89*24*time.Hour + 23*time.Hour}
	k := &keyState{AccessKeyID: "AKIAEXAMPLE000000001", KeyCreationDate: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	next, ok := nextRotation(cfg, k, k.KeyCreationDate)
	if !ok || next.After(k.KeyCreationDate.Add(maxRotationGap)) {
		t.Fatalf("next = %v", next)
	}
	sched, err := parseRotationSchedule("0 3 1 * *", k.KeyCreationDate)
	if err != nil {
		t.Fatal(err)
	}
	cfg = &orgConfig{RotationSchedule: "0 3 1 * *", RotationWindow: time.Hour, parsed: sched}
	now := k.KeyCreationDate.Add(88 * 24 * time.Hour)
	next, _ = nextRotation(cfg, k, now)
	if next.After(k.KeyCreationDate.Add(maxRotationGap)) {
		t.Fatalf("schedule pushed the rotation to %v, past 89 days", next)
	}
}

func TestScheduleGapGuard(t *testing.T) {
	cases := map[string]bool{
		"* * * * *":        true,
		"0 3 * * *":        true,
		"0 3 * * 1":        true,
		"0 3 1 * *":        true,
		"0 3 1 */2 *":      true,
		"0 3 15 1-12/2 *":  true,
		"0 3 1 1,4,7,10 *": false, // Jan 1 to Apr 1 is 90 days
		"0 3 1 */3 *":      false,
		"0 3 1 1 *":        false,
		"0 0 29 2 *":       false,
	}
	for spec, ok := range cases {
		t.Run(spec, func(t *testing.T) {
			_, err := parseRotationSchedule(spec, time.Now())
			if (err == nil) != ok {
				t.Fatalf("err = %v, want accepted=%v", err, ok)
			}
			if err != nil && !strings.Contains(err.Error(), "90 days old") {
				t.Fatalf("rejection does not say why: %v", err)
			}
		})
	}
}

func TestScheduler_BackoffSequence(t *testing.T) {
	for n, base := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
		for i := 0; i < 50; i++ {
			d := retryBackoff(n + 1)
			if d < base || d > base+base/4 || d > time.Hour {
				t.Fatalf("retry %d waits %v, want within [%v, %v] and at most 1h", n+1, d, base, min(base+base/4, time.Hour))
			}
		}
	}
}

// Retries of a definite failure stay inside the schedule's window, or wait
// for the next run, and never go past the 89-day limit; a stale key is
// recovered at once.
func TestSchedule_RetriesStayInsideTheWindow(t *testing.T) {
	monday3 := time.Date(2026, 1, 12, 3, 0, 0, 0, time.UTC)
	sched, err := parseRotationSchedule("0 3 * * 1", monday3)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &orgConfig{RotationSchedule: "0 3 * * 1", RotationWindow: time.Hour, parsed: sched}
	k := &keyState{AccessKeyID: "AKIAEXAMPLE000000001", KeyCreationDate: monday3.AddDate(0, 0, -7), LastVaultRotation: monday3.AddDate(0, 0, -7)}
	cases := map[string]struct {
		retry time.Time
		stale bool
		want  time.Time
	}{
		"inside the window":              {monday3.Add(31 * time.Minute), false, monday3.Add(31 * time.Minute)},
		"after the window: next run":     {monday3.Add(65 * time.Minute), false, monday3.AddDate(0, 0, 7)},
		"stale keys recover at once":     {monday3.Add(65 * time.Minute), true, monday3.Add(65 * time.Minute)},
		"never past the 89-day limit":    {k.issuedAt().Add(maxRotationGap - time.Hour), false, k.issuedAt().Add(maxRotationGap)},
		"a retry at the limit stays put": {k.issuedAt().Add(maxRotationGap + time.Hour), false, k.issuedAt().Add(maxRotationGap + time.Hour)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kk := *k
			kk.RetryAt, kk.Stale = tc.retry, tc.stale
			if name == "never past the 89-day limit" || name == "a retry at the limit stays put" {
				// Only the limit matters here: a schedule whose next run is far.
				kk.KeyCreationDate = monday3.AddDate(0, 0, -88)
				kk.LastVaultRotation = kk.KeyCreationDate
				kk.RetryAt = kk.issuedAt().Add(tc.retry.Sub(k.issuedAt()))
				tc.want = kk.issuedAt().Add(tc.want.Sub(k.issuedAt()))
			}
			got, ok := nextRotation(cfg, &kk, monday3)
			if !ok || !got.Equal(tc.want) {
				t.Fatalf("next = %v, want %v", got, tc.want)
			}
		})
	}
}

// A stale key is recovered even with automated rotation off, and creds
// says when.
func TestSchedule_StaleKeyRecoveredWithAutomationOff(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"disable_automated_rotation": true})
	env.mustRotate("acme")
	env.injectFault(ciscosim.Fault{Kind: "drop"})
	if _, err := env.rotate("acme"); err == nil {
		t.Fatal("a dropped reply reported success")
	}
	creds := env.mustRead("creds/acme")
	if creds.Data["key_state"] != "stale" || creds.Data["next_vault_rotation"] == nil {
		t.Fatalf("stale key without a recovery: %v %v", creds.Data["key_state"], creds.Data["next_vault_rotation"])
	}
	if len(creds.Warnings) == 0 || !strings.Contains(creds.Warnings[0], "rotates again at") {
		t.Fatalf("the warning does not say when the recovery runs: %v", creds.Warnings)
	}
	env.clock.Advance(2 * time.Minute)
	env.tick()
	if got := env.assertServesSimKey("acme").Data["key_state"]; got != "current" {
		t.Fatalf("after recovery key_state = %v", got)
	}
}

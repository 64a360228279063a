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

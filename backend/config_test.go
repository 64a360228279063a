package backend

import (
	"testing"
	"time"
)

func TestKeyCheck_Endpoint(t *testing.T) {
	cases := []struct{ override, dataPath, want string }{
		{"", "", "https://sts.amazonaws.com"},
		{"", "s3://cisco-managed-eu-central-1/1234567_abc", "https://sts.eu-central-1.amazonaws.com"},
		{"https://sts.example.internal", "s3://cisco-managed-eu-central-1/1234567_abc", "https://sts.example.internal"},
	}
	for _, tc := range cases {
		cfg := &orgConfig{STSURL: tc.override, DataPath: tc.dataPath}
		cfg.derive()
		if got := cfg.stsURL(); got != tc.want {
			t.Fatalf("sts_url for override %q, data_path %q: %s, want %s", tc.override, tc.dataPath, got, tc.want)
		}
	}

	env := newTestEnv(t)
	env.configure("acme", nil)
	for _, bad := range []string{"http://sts.example.com", "ftp://127.0.0.1", "https://sts.example.com/?x=1"} {
		resp, err := env.write("config/acme", map[string]interface{}{"sts_url": bad})
		mustBadRequest(t, resp, err, "sts_url")
	}
	env.mustWrite("config/acme", map[string]interface{}{"key_check": false, "data_path": "s3://cisco-managed-eu-west-1/1234567_abc", "sts_url": ""})
	resp := env.mustRead("config/acme")
	if resp.Data["key_check"] != false || resp.Data["sts_url"] != "https://sts.eu-west-1.amazonaws.com" {
		t.Fatalf("config read: key_check=%v sts_url=%v", resp.Data["key_check"], resp.Data["sts_url"])
	}
}

// The facts bucketkey decides with are the config's: the heal is off with
// rotate_rejected_key=false or key_check=false, and so is every check with
// key_check=false.
func TestConfigFacts(t *testing.T) {
	base := func() *orgConfig {
		c := newConfig()
		c.Provider = providerUmbrella
		return c
	}
	if f := base().facts(); !f.Heals || !f.KeyCheck || !f.Automated || f.CheckInterval != defaultKeyCheckInterval ||
		f.Period != defaultRotationPeriod || f.HasSchedule || f.Schedule != nil {
		t.Fatalf("defaults: %+v", f)
	}
	keep := base()
	keep.KeepRejectedKey = true
	if f := keep.facts(); f.Heals || !f.KeyCheck {
		t.Fatalf("rotate_rejected_key=false: heals %v, key check %v", f.Heals, f.KeyCheck)
	}
	off := base()
	off.DisableKeyCheck = true
	if f := off.facts(); f.Heals || f.KeyCheck || f.CheckInterval != 0 {
		t.Fatalf("key_check=false: heals %v, key check %v, interval %v", f.Heals, f.KeyCheck, f.CheckInterval)
	}
	manual := base()
	manual.DisableAutomatedRotation = true
	if manual.facts().Automated {
		t.Fatal("disable_automated_rotation=true: still automated")
	}
	sched, err := parseRotationSchedule("0 3 1 * *", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cron := base()
	cron.RotationSchedule, cron.parsed, cron.RotationWindow = "0 3 1 * *", sched, time.Hour
	if f := cron.facts(); !f.HasSchedule || f.Schedule == nil || f.Window != time.Hour {
		t.Fatalf("schedule: %+v", f)
	}
	unparsable := base()
	unparsable.RotationSchedule = "not a schedule"
	if f := unparsable.facts(); !f.HasSchedule || f.Schedule != nil {
		t.Fatalf("an unparsable stored schedule must leave the 89-day limit: %+v", f)
	}
}

package backend

import (
	"strings"
	"testing"
	"time"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

func TestScheduler_Events(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
	env.mustRotate("acme")
	env.clock.Advance(time.Minute)
	env.tick()
	env.injectFault(ciscosim.Fault{Kind: "error200"})
	_, _ = env.rotate("acme")

	if !hasEvent(env, eventRotate, "trigger", triggerManual) || !hasEvent(env, eventRotate, "trigger", triggerScheduled) {
		t.Fatal("missing rotate events")
	}
	if !hasEvent(env, eventRotateFail, "error", "Cisco: Internal error") {
		t.Fatal("missing rotate-fail event")
	}
	secret := env.simOrg().SecretAccessKey
	for _, ev := range env.events.Events {
		if ev.Event.Metadata.Fields["name"].GetStringValue() != "acme" || ev.Event.Metadata.Fields["version"] == nil {
			t.Fatalf("event without name or version: %v", ev.Event.Metadata)
		}
		if strings.Contains(ev.Event.Metadata.String(), secret) || strings.Contains(ev.Event.Metadata.String(), testClientSecret) {
			t.Fatal("an event carries a secret")
		}
	}
}

func hasEvent(env *testEnv, eventType, field, value string) bool {
	for _, ev := range env.events.Events {
		if string(ev.Type) == eventType && strings.Contains(ev.Event.Metadata.Fields[field].GetStringValue(), value) {
			return true
		}
	}
	return false
}

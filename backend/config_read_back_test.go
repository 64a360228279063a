package backend

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// readBack is a config read as a script sends it back: its data after a
// JSON round trip.
func readBack(t *testing.T, env *testEnv, name string) map[string]interface{} {
	t.Helper()
	raw, err := json.Marshal(env.mustRead("config/" + name).Data)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]interface{}
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestConfig_ReadWrittenBack(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	// The rotated key's probe records its check in the background; a
	// check between a read and its write-back changes read-only fields.
	env.waitKey("acme", func(k *keyState) bool { return !k.CheckTriedAt().IsZero() })

	t.Run("unchanged, it is accepted and changes nothing", func(t *testing.T) {
		before := readBack(t, env, "acme")
		env.mustWrite("config/acme", readBack(t, env, "acme"))
		if after := readBack(t, env, "acme"); !sameJSON(before, after) {
			t.Fatalf("a write-back changed the config:\n%v\n%v", before, after)
		}
	})
	t.Run("with a setting changed, the setting is stored", func(t *testing.T) {
		data := readBack(t, env, "acme")
		data["rotation_period"] = 7 * 24 * 3600
		env.mustWrite("config/acme", data)
		if got := env.mustRead("config/acme").Data["rotation_period"]; got != int64(7*24*3600) && got != 7*24*3600 {
			t.Fatalf("rotation_period = %v (%T)", got, got)
		}
	})
	t.Run("what a read shows is not stored as a setting", func(t *testing.T) {
		// The read shows the provider's URLs and the default check
		// interval; written back, they stay defaults that follow a change.
		env.mustWrite("config/acme", readBack(t, env, "acme"))
		env.mustWrite("config/acme", map[string]interface{}{"key_check": false})
		env.mustWrite("config/acme", readBack(t, env, "acme"))
		env.mustWrite("config/acme", map[string]interface{}{"key_check": true})
		if got := env.mustRead("config/acme").Data["key_check_interval"]; got != int64(defaultKeyCheckInterval/time.Second) {
			t.Fatalf("after a write-back with key_check off and on again, key_check_interval = %v", got)
		}
		env.mustWrite("config/plain", map[string]interface{}{"provider": "umbrella", "client_id": "plain-client",
			"client_secret": "plain-secret", "verify_connection": false})
		env.mustWrite("config/plain", readBack(t, env, "plain"))
		e, _ := env.b.cached("plain")
		if e.config.APIURL != "" || e.config.TokenURL != "" || e.config.STSURL != "" || e.config.KeyCheckInterval != nil {
			t.Fatalf("a write-back stored what the read computed: api_url %q, token_url %q, key_check_interval %v",
				e.config.APIURL, e.config.TokenURL, e.config.KeyCheckInterval)
		}
	})
	t.Run("a scheduled config written back", func(t *testing.T) {
		env.mustWrite("config/acme", map[string]interface{}{"rotation_schedule": "0 3 1 * *", "rotation_window": "2h"})
		before := readBack(t, env, "acme")
		env.mustWrite("config/acme", readBack(t, env, "acme"))
		if after := readBack(t, env, "acme"); !sameJSON(before, after) || after["rotation_schedule"] != "0 3 1 * *" {
			t.Fatalf("a write-back of a scheduled config changed it:\n%v\n%v", before, after)
		}
	})
	t.Run("a read-only field that differs is a 400 naming it", func(t *testing.T) {
		data := readBack(t, env, "acme")
		data["version"], data["key_state"] = 99, "stale"
		resp, err := env.write("config/acme", data)
		mustBadRequest(t, resp, err, "key_state, version: read-only")
	})
	t.Run("an unknown field is still refused", func(t *testing.T) {
		data := readBack(t, env, "acme")
		data["rotaton_period"] = "30d"
		resp, err := env.write("config/acme", data)
		mustBadRequest(t, resp, err, `unknown field "rotaton_period"`)
		if strings.Contains(resp.Error().Error(), "version") {
			t.Fatal("the refusal names read-only fields that match the read")
		}
	})
}

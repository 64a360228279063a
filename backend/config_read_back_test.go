package backend

import (
	"encoding/json"
	"strings"
	"testing"
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

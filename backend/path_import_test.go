package backend

import (
	"strings"
	"testing"
)

func TestImport(t *testing.T) {
	const id, secret = "AKIAIMPORTED00000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
	cases := map[string]struct {
		data map[string]interface{}
		want string
	}{
		"missing id":      {map[string]interface{}{"secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00"}, "access_key_id is required"},
		"bad id":          {map[string]interface{}{"access_key_id": "akia-lower", "secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00"}, "access_key_id must be"},
		"missing secret":  {map[string]interface{}{"access_key_id": id, "key_creation_date": "2026-01-01T00:00:00"}, "secret_access_key is required"},
		"bad secret":      {map[string]interface{}{"access_key_id": id, "secret_access_key": "short!", "key_creation_date": "2026-01-01T00:00:00"}, "secret_access_key must be"},
		"missing date":    {map[string]interface{}{"access_key_id": id, "secret_access_key": secret}, "key_creation_date is required"},
		"bad date":        {map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "last tuesday"}, "is not a date"},
		"future date":     {map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2026-02-01T00:00:00Z"}, "in the future"},
		"locked key date": {map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2025-10-01T00:00:00"}, "90 days or more ago"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", nil)
			resp, err := env.write("import/acme", tc.data)
			mustBadRequest(t, resp, err, tc.want)
			if strings.Contains(resp.Error().Error(), "short!") {
				t.Fatal("the rejected secret was echoed")
			}
		})
	}

	t.Run("stores a new version scheduled from its creation date", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
		env.mustRotate("acme")
		prev := env.simOrg().CurrentKeyID
		resp := env.mustWrite("import/acme", map[string]interface{}{
			"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00", "verify": false,
		})
		if resp.Data["version"] != 2 || resp.Data["old_access_key_id"] != prev || resp.Data["key_creation_date"] != "2026-01-01T00:00:00Z" {
			t.Fatalf("import response %v", resp.Data)
		}
		creds := env.mustRead("creds/acme")
		if creds.Data["secret_access_key"] != secret || creds.Data["access_key_id"] != id {
			t.Fatal("creds do not serve the imported key")
		}
		// Created 2026-01-01 with a 30-day period: due 2026-01-31, though
		// Vault learnt of it on 2026-01-10.
		if creds.Data["next_vault_rotation"] != "2026-01-31T00:00:00Z" || creds.Data["expires_at"] != "2026-04-01T00:00:00Z" {
			t.Fatalf("imported key timing: next %v expires %v", creds.Data["next_vault_rotation"], creds.Data["expires_at"])
		}
		if strings.Contains(env.logs.String(), secret) {
			t.Fatal("the imported secret was logged")
		}
	})
	t.Run("needs a config", func(t *testing.T) {
		env := newTestEnv(t)
		resp, err := env.write("import/acme", map[string]interface{}{"access_key_id": id, "secret_access_key": secret, "key_creation_date": "2026-01-01T00:00:00"})
		mustBadRequest(t, resp, err, "write config/acme first")
	})
}

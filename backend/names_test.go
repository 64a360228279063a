package backend

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestValidName(t *testing.T) {
	valid := []string{"acme", "a", "7", "acme-umbrella", "acme_eu.prod", "A.b-C_d9", strings.Repeat("a", 64)}
	invalid := []string{"", strings.Repeat("a", 65), "acme..eu", "acme/eu", "acme.", "-acme", "_acme", "acme_",
		".acme", "ops@acme", "acme eu", "acmé", "..", "a/../b"}
	for _, name := range valid {
		if !validName(name) {
			t.Errorf("validName(%q) = false, want true", name)
		}
	}
	for _, name := range invalid {
		if validName(name) {
			t.Errorf("validName(%q) = true, want false", name)
		}
	}
}

// Every per-name path answers a name that the rule refuses with a 400
// that states the rule: not a 500 from storage, not a bare 404 from the
// router, and nothing at ERROR in the log.
func TestInvalidNameIsA400OnEveryPath(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	for _, name := range []string{"acme..eu", "acme/eu", "acme.", "-acme", "acme/", strings.Repeat("a", 65)} {
		for _, req := range []struct {
			op   logical.Operation
			path string
		}{
			{logical.UpdateOperation, "config/"},
			{logical.ReadOperation, "config/"},
			{logical.DeleteOperation, "config/"},
			{logical.UpdateOperation, "rotate/"},
			{logical.UpdateOperation, "import/"},
			{logical.UpdateOperation, "verify/"},
			{logical.ReadOperation, "creds/"},
		} {
			var data map[string]interface{}
			if req.path == "config/" && req.op == logical.UpdateOperation {
				data = map[string]interface{}{"provider": "umbrella"}
			}
			resp, err := env.request(req.op, req.path+name, data)
			mustBadRequest(t, resp, err, "invalid name")
			mustBadRequest(t, resp, err, nameRule)
		}
	}
	env.assertNoErrorLogged()
	// The list and the valid names still route where they did.
	list := env.mustRequest(logical.ListOperation, "config/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 1 || keys[0] != "acme" {
		t.Fatalf("list: %v", list.Data)
	}
	env.mustRead("config/acme")
}

// Names that versions before the rule accepted, and that it refuses, stay
// readable and deletable when they are stored; new ones are refused.
func TestStoredLegacyNameStaysUsable(t *testing.T) {
	env := newTestEnv(t)
	cfg := &orgConfig{Provider: providerUmbrella, ClientID: testClientID, ClientSecret: testClientSecret, RotationPeriod: defaultRotationPeriod}
	if err := seedJSON(t0ctx, env.storage, configPrefix+"_legacy", cfg); err != nil {
		t.Fatal(err)
	}
	env.mustRead("config/_legacy")
	env.mustRequest(logical.DeleteOperation, "config/_legacy", nil)
	resp, err := env.read("config/_legacy")
	mustBadRequest(t, resp, err, nameRule)
	resp, err = env.write("config/_other", map[string]interface{}{"provider": "umbrella"})
	mustBadRequest(t, resp, err, nameRule)
}

// The name field's description states the rule, so that path-help and
// the OpenAPI document show it.
func TestNameFieldDescribesTheRule(t *testing.T) {
	env := newTestEnv(t)
	for _, path := range []string{"config/x", "rotate/x", "import/x", "verify/x", "creds/x"} {
		p := env.b.Route(path)
		if p == nil {
			t.Fatalf("%s does not route", path)
		}
		if !strings.Contains(p.Fields["name"].Description, nameRule) {
			t.Errorf("%s: the name field does not state the rule: %q", path, p.Fields["name"].Description)
		}
	}
}

package backend

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// A mistyped field is refused with the field it was meant to be, and
// nothing is stored.
func TestUnknownConfigFieldIsRefused(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	resp, err := env.write("config/acme", map[string]interface{}{"rotaton_period": "30d"})
	mustBadRequest(t, resp, err, `unknown field "rotaton_period"; did you mean "rotation_period"? Known fields: api_url, client_id, `)
	if len(resp.Warnings) != 0 {
		t.Fatalf("the refusal carries warnings that contradict it: %v", resp.Warnings)
	}
	if got := mustConfig(env, "acme").RotationPeriod; got != defaultRotationPeriod {
		t.Fatalf("rotation_period changed to %v", got)
	}
	// A create is refused too, and stores nothing.
	resp, err = env.write("config/new-org", map[string]interface{}{"provider": "umbrella", "client_id": "x",
		"client_secret": "s3cr3t-value", "verify_conection": false})
	mustBadRequest(t, resp, err, `did you mean "verify_connection"?`)
	if strings.Contains(resp.Error().Error(), "s3cr3t-value") {
		t.Fatal("the 400 quotes a value")
	}
	if e, _ := env.b.cached("new-org"); e != nil {
		t.Fatal("the refused create was stored")
	}
	// Nothing close: the known fields only.
	resp, err = env.write("config/acme", map[string]interface{}{"colour": "blue"})
	mustBadRequest(t, resp, err, `unknown field "colour". Known fields: `)
	if strings.Contains(resp.Error().Error(), "did you mean") || strings.Contains(resp.Error().Error(), `"name"`) {
		t.Fatalf("unexpected suggestion or name field: %v", resp.Error())
	}
}

// Every write path refuses unknown fields: a mistyped graceful=true must
// not rotate at once.
func TestUnknownFieldIsRefusedOnEveryWritePath(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	before := env.simOrg().Rotations
	for path, want := range map[string]string{
		"rotate/acme": `unknown field "gracefull"; did you mean "graceful"?`,
		"import/acme": `unknown field "gracefull"`,
		"verify/acme": `unknown field "gracefull". This path takes no fields.`,
	} {
		resp, err := env.write(path, map[string]interface{}{"gracefull": true})
		mustBadRequest(t, resp, err, want)
	}
	resp, err := env.request(logical.DeleteOperation, "config/acme", map[string]interface{}{"forse": true})
	mustBadRequest(t, resp, err, `did you mean "force"?`)
	if got := env.simOrg().Rotations; got != before {
		t.Fatalf("a refused request rotated: %d→%d", before, got)
	}
	env.mustRead("config/acme")
}

func TestClosestField(t *testing.T) {
	known := []string{"graceful", "rotation_period", "rotation_schedule", "rotation_window"}
	for field, want := range map[string]string{
		"rotaton_period": "rotation_period", "gracefull": "graceful", "Graceful": "graceful",
		"rotation_schedul": "rotation_schedule", "period": "", "xyz": "",
	} {
		if got := closestField(field, known); got != want {
			t.Errorf("closestField(%q) = %q, want %q", field, got, want)
		}
	}
}

// A name in the body that is not the path's is refused on every write
// path, and nothing happens; the path's own name in the body is accepted.
func TestBodyNameDifferentFromThePathIsRefused(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	before := env.simOrg().Rotations
	for _, path := range []string{"rotate/acme", "config/acme", "import/acme", "verify/acme"} {
		resp, err := env.write(path, map[string]interface{}{"name": "prod"})
		mustBadRequest(t, resp, err, `the body's name "prod" is not the path's "acme"`)
	}
	if got := env.simOrg().Rotations; got != before {
		t.Fatalf("%d rotations after refused writes", got-before)
	}
	if _, err := env.rotate("acme"); err != nil {
		t.Fatal(err)
	}
	if resp, err := env.write("rotate/acme", map[string]interface{}{"name": "acme"}); err != nil || resp.IsError() {
		t.Fatalf("the path's own name in the body: %v %v", resp, err)
	}
}

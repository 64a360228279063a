package backend

import (
	"testing"
)

// A value that does not parse is the caller's mistake: a 400, and nothing
// at ERROR in the server log, which Vault writes for every error an
// existence check returns.
func TestBadInputIsNeverLoggedAtError(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	for path, data := range map[string]map[string]interface{}{
		"config/acme":     {"rotation_period": "2w"},
		"config/new-org":  {"provider": "umbrella", "key_check_interval": "soon"},
		"config/acme..eu": {"provider": "umbrella"},
	} {
		resp, err := env.write(path, data)
		if err != nil || resp == nil || !resp.IsError() {
			t.Fatalf("%s %v: want a 400, got %v, %v", path, data, resp, err)
		}
	}
	env.assertNoErrorLogged()
	if got := mustConfig(env, "acme").RotationPeriod; got != defaultRotationPeriod {
		t.Fatalf("the refused write changed rotation_period to %v", got)
	}
}

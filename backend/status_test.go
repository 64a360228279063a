package backend

import (
	"strings"
	"testing"
)

// assertNamesMount checks that a message gives its command on the
// request's mount, and no placeholder.
func assertNamesMount(t *testing.T, msg, want string) {
	t.Helper()
	if !strings.Contains(msg, want) || strings.Contains(msg, "<mount>") || strings.Contains(msg, "<name>") {
		t.Fatalf("message %q does not name %q, or keeps a placeholder", msg, want)
	}
}

// Every command that an error or a warning suggests names the mount the
// request came through, and the organization.
func TestMessagesNameTheMount(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)

	for _, req := range []func() (string, error){
		func() (string, error) { r, err := env.read("creds/acme"); return r.Error().Error(), err },
		func() (string, error) { r, err := env.write("verify/acme", nil); return r.Error().Error(), err },
		func() (string, error) {
			r, err := env.write("rotate/acme", map[string]interface{}{"graceful": true})
			return r.Error().Error(), err
		},
	} {
		msg, err := req()
		if err != nil {
			t.Fatal(err)
		}
		assertNamesMount(t, msg, "vault write -f cisco-s3/rotate/acme")
		assertNamesMount(t, msg, "vault write cisco-s3/import/acme access_key_id=")
	}

	resp := env.mustWrite("import/acme", map[string]interface{}{"access_key_id": "AKIAIOSFODNN7EXAMPLE",
		"secret_access_key": strings.Repeat("s", 40), "key_creation_date": "2026-01-01T00:00:00", "verify": false})
	assertNamesMount(t, strings.Join(resp.Warnings, " "), "vault write -f cisco-s3/verify/acme")

	env.failWithoutCisco()
	resp = env.mustRead("creds/acme")
	assertNamesMount(t, strings.Join(resp.Warnings, " "), "vault write -f cisco-s3/rotate/acme")
	resp = env.mustRead("config/acme")
	assertNamesMount(t, strings.Join(resp.Warnings, " "), "vault write -f cisco-s3/rotate/acme")

	env.storage.setFailPut(failKeyPuts(storeAttempts))
	_, err := env.rotate("acme")
	env.storage.setFailPut(nil)
	if err == nil {
		t.Fatal("a lost key reported success")
	}
	assertNamesMount(t, err.Error(), "vault write -f cisco-s3/rotate/acme")
}

// The rejected key's warning names the mount too.
func TestRejectedWarningNamesTheMount(t *testing.T) {
	env := watchedEnv(t, map[string]interface{}{"rotate_rejected_key": false})
	env.sim.RefreshKey(testOrgID)
	env.minuteTicks(4)
	resp := env.mustRead("creds/acme")
	assertNamesMount(t, strings.Join(resp.Warnings, " "), "vault write -f cisco-s3/rotate/acme")
}

package backend

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// TestCredentialCheck: a config write that changes the credentials fetches a
// token first; a failure is a 400 that says what is wrong, and nothing is
// stored.
func TestCredentialCheck(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String() + "/auth/v2/token"
	closed.Close()

	cases := map[string]struct {
		apiKey ciscosim.APIKey
		data   map[string]interface{}
		want   string
	}{
		"wrong secret": {data: map[string]interface{}{"client_secret": "wrong-secret-Zq8vW3"}, want: "client_id or client_secret is wrong"},
		"unknown org":  {data: map[string]interface{}{"org_id": "9999999"}, want: `may not act on org_id "9999999"`},
		"unreachable":  {data: map[string]interface{}{"token_url": deadURL}, want: "could not reach the token URL " + deadURL},
		"missing scope": {
			apiKey: ciscosim.APIKey{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}, Scopes: "reports.read admin.users:read"},
			want:   "but not admin.iam:write",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			key := ciscosim.APIKey{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}}
			if tc.apiKey.ClientID != "" {
				key = tc.apiKey
			}
			env := newTestEnv(t, withSimConfig(ciscosim.Config{APIKeys: []ciscosim.APIKey{key}, NoRateLimits: true}))
			data := map[string]interface{}{
				"provider": "umbrella", "client_id": testClientID, "client_secret": testClientSecret,
				"api_url": env.srv.URL + "/admin/v2", "token_url": env.srv.URL + "/auth/v2/token",
			}
			for k, v := range tc.data {
				data[k] = v
			}
			resp, err := env.write("config/acme", data)
			mustBadRequest(t, resp, err, tc.want)
			if !strings.Contains(resp.Error().Error(), "verify_connection=false") || strings.Contains(resp.Error().Error(), fmt.Sprint(data["client_secret"])) {
				t.Fatalf("the message does not say how to skip the check, or quotes the secret: %v", resp.Error())
			}
			if got, _ := env.read("config/acme"); got != nil {
				t.Fatal("a config that failed the check was stored")
			}
			if env.sim.State().RotateCalls != 0 {
				t.Fatal("the check called rotateKey")
			}
			// Skipping the check stores it, for offline setup.
			data["verify_connection"] = false
			env.mustWrite("config/acme", data)
			if env.mustRead("config/acme") == nil {
				t.Fatal("verify_connection=false did not store the config")
			}
		})
	}
}

// An update is checked only when it changes what the token request sends;
// a failed check keeps the stored credentials; the token of a passed check
// serves the first rotation.
func TestCredentialCheck_Updates(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	tokens := env.sim.State().TokenCalls
	if tokens != 1 {
		t.Fatalf("create made %d token calls, want 1", tokens)
	}
	env.mustRotate("acme")
	env.mustWrite("config/acme", map[string]interface{}{"rotation_period": "30d", "data_path": ""})
	if got := env.sim.State().TokenCalls; got != tokens {
		t.Fatalf("the first rotation or a settings-only update fetched %d more tokens", got-tokens)
	}
	resp, err := env.write("config/acme", map[string]interface{}{"client_secret": "wrong-secret-Zq8vW3"})
	mustBadRequest(t, resp, err, "client_id or client_secret is wrong")
	env.mustRotate("acme") // still the good secret
	env.assertServesSimKey("acme")
	env.assertNoSecretsLogged("wrong-secret-Zq8vW3")
}

// The credential check of a config write takes its API key's turn like any
// Cisco call: while another call of the same API key holds it, the check
// waits, and gives up as busy, storing nothing.
func TestCredentialCheck_TakesTheAPIKeysTurn(t *testing.T) {
	env := newTestEnv(t)
	env.b.limiter = cisco.NewLimiter(cisco.WithTurnTimeout(100 * time.Millisecond))
	apiKey := env.srv.URL + "/auth/v2/token|" + testClientID
	release, err := env.b.limiter.Acquire(context.Background(), apiKey)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := env.write("config/acme", map[string]interface{}{"provider": "umbrella", "client_id": testClientID,
		"client_secret": testClientSecret, "api_url": env.srv.URL + "/admin/v2", "token_url": env.srv.URL + "/auth/v2/token"})
	mustBadRequest(t, resp, err, "still running")
	release()
	env.configure("acme", nil)
}

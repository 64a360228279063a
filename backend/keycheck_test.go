package backend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// checkSimKey checks a key against the env's simulator.
func (e *testEnv) checkSimKey(id, secret string) keyCheckResult {
	return e.b.checker.check(context.Background(), e.srv.URL, "us-east-1", id, secret)
}

func TestKeyCheck_ClassifiesSTSAnswers(t *testing.T) {
	env := newTestEnv(t)
	org := env.simOrg()
	assertNoSecret := func(r keyCheckResult) {
		t.Helper()
		if strings.Contains(r.String(), org.SecretAccessKey) {
			t.Fatal("a check result quotes the secret")
		}
	}

	r := env.checkSimKey(org.CurrentKeyID, org.SecretAccessKey)
	if r.Outcome != keyValid || r.Account != org.AccountID || r.ARN != org.ARN {
		t.Fatalf("current key: %+v, want valid with account %s and %s", r, org.AccountID, org.ARN)
	}
	// The same checker, the same key id, another secret: a signer that
	// cached the first signing key would pass it.
	wrong := mistype(org.SecretAccessKey)
	if r := env.checkSimKey(org.CurrentKeyID, wrong); r.Outcome != keyInvalid || r.Half != keyHalfSecret || r.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %+v", r)
	}
	if r := env.checkSimKey("AKIANOTAKEYOFANYORG1", org.SecretAccessKey); r.Outcome != keyInvalid || r.Half != keyHalfID {
		t.Fatalf("unknown key id: %+v", r)
	}
	for _, kind := range []string{"sts_5xx", "sts_throttling", "sts_drop"} {
		env.injectFault(ciscosim.Fault{Kind: kind})
		r := env.checkSimKey(org.CurrentKeyID, org.SecretAccessKey)
		if r.Outcome != keyUnknown {
			t.Fatalf("%s: %+v, want unknown", kind, r)
		}
		assertNoSecret(r)
	}
	// Not an STS endpoint at all: says nothing about the key.
	if r := env.b.checker.check(context.Background(), env.srv.URL+"/admin/v2", "", org.CurrentKeyID, org.SecretAccessKey); r.Outcome != keyUnknown {
		t.Fatalf("a non-STS endpoint: %+v", r)
	}
	assertNoSecret(r)
}

func TestKeyCheck_DeadlineAndBodyCap(t *testing.T) {
	env := newTestEnv(t)
	org := env.simOrg()
	env.injectFault(ciscosim.Fault{Kind: "sts_delay", DelayMS: 2000})
	short := newKeyChecker(nil, 200*time.Millisecond)
	start := time.Now()
	if r := short.check(context.Background(), env.srv.URL, "", org.CurrentKeyID, org.SecretAccessKey); r.Outcome != keyUnknown {
		t.Fatalf("a check past its deadline: %+v", r)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("the check took %s, past its 200 ms deadline", d)
	}

	// An endless 200 body: the check reads at most the cap and says unknown.
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("<a>", 1024))
		for i := 0; i < 1<<14; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	if r := short.check(context.Background(), endless.URL, "", org.CurrentKeyID, org.SecretAccessKey); r.Outcome != keyUnknown {
		t.Fatalf("an endless body: %+v", r)
	}
}

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

// skewedClock sends requests signed 20 minutes in the past, as a Vault
// host with a wrong clock does.
type skewedClock struct{}

func (skewedClock) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Amz-Date", time.Now().UTC().Add(-20*time.Minute).Format("20060102T150405Z"))
	return http.DefaultTransport.RoundTrip(r)
}

// AWS answers SignatureDoesNotMatch for a skewed clock and a wrong region
// scope too; neither says the secret is wrong.
func TestKeyCheck_SignatureRefusedForAnotherCauseIsUnknown(t *testing.T) {
	env := newTestEnv(t)
	org := env.simOrg()
	env.b.checker = newKeyChecker(skewedClock{}, 0)
	r := env.checkSimKey(org.CurrentKeyID, org.SecretAccessKey)
	if r.Outcome != keyUnknown || r.Half != "" || !strings.Contains(r.Reason, "Signature expired") || !strings.Contains(r.Reason, "clock") {
		t.Fatalf("a skewed clock: %+v, want unknown naming the clock", r)
	}
	// An import of a correct key through that clock is stored with a
	// warning, not refused as a wrong secret.
	env.configure("acme", nil)
	resp := env.mustWrite("import/acme", env.refreshed())
	if len(resp.Warnings) == 0 || !strings.Contains(strings.Join(resp.Warnings, " "), "could not check") {
		t.Fatalf("import through a skewed clock: warnings %v", resp.Warnings)
	}

	region := `<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>` +
		`<Message>Credential should be scoped to a valid region. </Message></Error></ErrorResponse>`
	if r := classifySTSAnswer(http.StatusForbidden, []byte(region)); r.Outcome != keyUnknown {
		t.Fatalf("a wrong region scope: %+v, want unknown", r)
	}
}

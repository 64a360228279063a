package backend

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSecretsNeverPrinted: any %v, %+v or %#v of a value holding a secret,
// as a log line or a panic would print it, redacts the secret.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-VALUE-never-printed"
	values := map[string]interface{}{
		"orgConfig":      orgConfig{ClientID: "id", ClientSecret: secret},
		"*orgConfig":     &orgConfig{ClientID: "id", ClientSecret: secret},
		"keyState":       keyState{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"*keyState":      &keyState{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"ciscoSettings":  ciscoSettings{ClientID: "id", ClientSecret: secret},
		"issuedKey":      issuedKey{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"*issuedKey":     &issuedKey{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"orgEntry":       orgEntry{config: &orgConfig{ClientSecret: secret}, key: &keyState{SecretAccessKey: secret}},
		"panic of entry": panicText(func() { panic(&orgConfig{ClientSecret: secret}) }),
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, secret) {
				t.Errorf("%s printed with %s leaks the secret: %s", name, verb, out)
			}
		}
	}
}

func panicText(f func()) (out string) {
	defer func() { out = fmt.Sprint(recover()) }()
	f()
	return ""
}

// TestReplyBodiesAreCapped: a reply larger than 1 MiB is refused, not read
// whole, and a huge 2xx counts as ambiguous.
func TestReplyBodiesAreCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"t","token_type":"bearer","expires_in":3600}`)
			return
		}
		w.WriteHeader(http.StatusOK)
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < 64; i++ { // 4 MiB
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := newCiscoClient(ciscoSettings{ClientID: "id", ClientSecret: "secret", APIURL: srv.URL, TokenURL: srv.URL + "/token"}, nil, 0, nil)
	_, err := c.rotateKey(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") || !isAmbiguous(err) {
		t.Fatalf("err = %v", err)
	}
}

// TestInsecureURLsRefused checks the loopback rule of the URL validator,
// which every config write runs: plain http only for loopback hosts.
func TestInsecureURLsRefused(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:8787/admin/v2":  true,
		"http://127.9.9.9/admin/v2":       true,
		"http://localhost/admin/v2":       true,
		"http://[::1]/admin/v2":           true,
		"http://localhost.evil.com/x":     false,
		"http://127.0.0.1.nip.io/x":       false,
		"http://10.0.0.1/admin/v2":        false,
		"http://api.umbrella.com/admin":   false,
		"https://api.umbrella.com/admin":  true,
		"HTTPS://API.UMBRELLA.COM/admin/": true,
	} {
		_, err := validateURL(raw)
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want accepted=%v", raw, err, ok)
		}
	}
}

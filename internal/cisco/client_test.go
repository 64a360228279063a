package cisco

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

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
	c := NewClient(Settings{ClientID: "id", ClientSecret: "secret", APIURL: srv.URL, TokenURL: srv.URL + "/token"})
	_, err := c.RotateKey(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") || !IsAmbiguous(err) {
		t.Fatalf("err = %v", err)
	}
}

// TestSecretsNeverPrinted: any %v, %+v or %#v of a value holding a secret,
// as a log line or a panic would print it, redacts the secret.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-VALUE-never-printed"
	values := map[string]interface{}{
		"Settings":   Settings{ClientID: "id", ClientSecret: secret},
		"IssuedKey":  IssuedKey{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"*IssuedKey": &IssuedKey{AccessKeyID: "AKIA", SecretAccessKey: secret},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, secret) {
				t.Errorf("%s printed with %s leaks the secret: %s", name, verb, out)
			}
		}
	}
}

func TestNewClient_Options(t *testing.T) {
	s := Settings{ClientID: "id", ClientSecret: "secret", APIURL: "https://api.example", TokenURL: "https://api.example/token"}
	c := NewClient(s, WithTransport(nil), WithTimeout(0), WithClock(nil))
	if c.Settings() != s || c.timeout != CallTimeout || c.http.Timeout != CallTimeout || c.http.Transport != http.DefaultTransport || c.now == nil {
		t.Fatalf("zero options did not keep the defaults: timeout %v, transport %T", c.timeout, c.http.Transport)
	}
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, fmt.Errorf("not here") })
	at := time.Date(2025, 3, 12, 22, 0, 0, 0, time.UTC)
	c = NewClient(s, WithTransport(rt), WithTimeout(time.Second), WithClock(func() time.Time { return at }))
	if c.timeout != time.Second || c.http.Timeout != time.Second || c.http.Transport == nil || !c.now().Equal(at) {
		t.Fatalf("options not applied: timeout %v, transport %T", c.timeout, c.http.Transport)
	}
	if _, ok := c.http.Transport.(roundTripFunc); !ok {
		t.Fatalf("transport %T, want the one given", c.http.Transport)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A 401, a 400 invalid_request or a 429 that carries a key pair is not
// called again: Cisco issued the key, and a second call would kill it.
func TestRotateKey_ReplyWithAKeyPairIsNeverRetried(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusBadRequest, http.StatusTooManyRequests} {
		var calls int
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if strings.HasSuffix(r.URL.Path, "/token") {
				fmt.Fprint(w, `{"access_token":"t","token_type":"bearer","expires_in":3600}`)
				return
			}
			calls++
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":"invalid_request","currentKeyId":"AKIARB5FPGFNZR3BZAXN","secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"}`)
		}))
		c := NewClient(Settings{ClientID: "id", ClientSecret: "secret", APIURL: srv.URL, TokenURL: srv.URL + "/token"})
		_, err := c.RotateKey(context.Background())
		srv.Close()
		if calls != 1 || !IsAmbiguous(err) {
			t.Errorf("HTTP %d with a key pair: %d calls, err %v; want 1 call and an ambiguous error", status, calls, err)
		}
	}
}

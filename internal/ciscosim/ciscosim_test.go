package ciscosim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	clientID = "client"
	secret   = "secret"
	org      = "1234567"
)

func newSim(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.APIKeys == nil {
		cfg.APIKeys = []APIKey{{ClientID: clientID, ClientSecret: secret, OrgIDs: []string{org, "2222222"}}}
	}
	s := New(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

type reply struct {
	status int
	header http.Header
	body   map[string]interface{}
	raw    string
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func tokenRequest(t *testing.T, base, id, sec, orgHeader string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/auth/v2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	if orgHeader != "" {
		req.Header.Set("X-Umbrella-OrgId", orgHeader)
	}
	return do(t, req)
}

func getToken(t *testing.T, base string) string {
	t.Helper()
	r := tokenRequest(t, base, clientID, secret, "")
	if r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
	return r.body["access_token"].(string)
}

func rotate(t *testing.T, base, tok string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/admin/v2/iam/rotateKey", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func TestLoadConfig(t *testing.T) {
	path := t.TempDir() + "/sim.json"
	body := `{"api_keys":[{"client_id":"a","client_secret":"b","org_ids":["1"]}],"orgs":[{"org_id":"2","disabled":true}],"token_ttl":"90s","no_rate_limits":true}`
	if err := writeFile(path, body); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil || cfg.TokenTTL != 90*time.Second || !cfg.NoRateLimits || len(cfg.APIKeys) != 1 || !cfg.Orgs[0].Disabled {
		t.Fatalf("%+v %v", cfg, err)
	}
	if err := writeFile(path, `{"token_ttl":"soon"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil {
		t.Fatal("bad token_ttl accepted")
	}
}

func TestLoadConfig_AWS(t *testing.T) {
	path := t.TempDir() + "/sim.json"
	if err := writeFile(path, `{"orgs":[{"org_id":"2","region":"eu-west-1"}],"propagation_delay":"5s"}`); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil || cfg.PropagationDelay != 5*time.Second || cfg.Orgs[0].Region != "eu-west-1" {
		t.Fatalf("%+v %v", cfg, err)
	}
	if err := writeFile(path, `{"propagation_delay":5}`); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil {
		t.Fatal("a propagation_delay without a unit was accepted")
	}
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }

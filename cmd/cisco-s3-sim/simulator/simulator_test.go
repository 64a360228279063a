package simulator

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

func TestToken(t *testing.T) {
	cases := map[string]struct {
		id, secret, org string
		status          int
		want            string
	}{
		"success":           {clientID, secret, "", 200, "admin.iam:write"},
		"bad secret":        {clientID, "wrong", "", 401, "invalid_client"},
		"unknown client":    {"nobody", secret, "", 401, "invalid_client"},
		"allowed org":       {clientID, secret, "2222222", 200, "bearer"},
		"foreign org":       {clientID, secret, "9999999", 403, "access_denied"},
		"missing basic pwd": {clientID, "", "", 401, "invalid_client"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, srv := newSim(t, Config{NoRateLimits: true})
			r := tokenRequest(t, srv.URL, tc.id, tc.secret, tc.org)
			if r.status != tc.status || !strings.Contains(r.raw, tc.want) {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if r.status == 200 && r.body["expires_in"] != float64(3600) {
				t.Fatalf("expires_in %v", r.body["expires_in"])
			}
		})
	}
	t.Run("wrong grant type", func(t *testing.T) {
		_, srv := newSim(t, Config{NoRateLimits: true})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/auth/v2/token", strings.NewReader("grant_type=password"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		if r := do(t, req); r.status != 400 || r.body["error"] != "unsupported_grant_type" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
}

func TestRotate(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	before := s.State().Orgs[org]
	r := rotate(t, srv.URL, getToken(t, srv.URL))
	after := s.State().Orgs[org]
	if r.status != 200 || r.body["oldKeyId"] != before.CurrentKeyID || r.body["currentKeyId"] != after.CurrentKeyID ||
		r.body["secretAccessKey"] != after.SecretAccessKey || after.Rotations != 1 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	date := r.body["keyCreationDate"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05", date); err != nil {
		t.Fatalf("keyCreationDate %q is not Cisco's zone-less form", date)
	}
	if !strings.HasPrefix(after.CurrentKeyID, "AKIA") || len(after.CurrentKeyID) != 20 || len(after.SecretAccessKey) != 40 {
		t.Fatalf("key shape %s", after.CurrentKeyID)
	}
	// The org header picks the organization.
	r = tokenRequest(t, srv.URL, clientID, secret, "2222222")
	rotate(t, srv.URL, r.body["access_token"].(string))
	if st := s.State(); st.Orgs["2222222"].Rotations != 1 || st.Orgs[org].Rotations != 1 || st.OrgHeaders["2222222"] != 1 {
		t.Fatalf("state %+v", st)
	}
}

func TestRotate_AuthQuirks(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true, Orgs: []Org{{ID: "3333333", Disabled: true}},
		APIKeys: []APIKey{{ClientID: clientID, ClientSecret: secret, OrgIDs: []string{org}}, {ClientID: "off", ClientSecret: secret, OrgIDs: []string{"3333333"}}}})
	if r := rotate(t, srv.URL, "made-up"); r.status != 401 || r.body["error"] != "Authorization token is invalid." {
		t.Fatalf("unknown token: %d %s", r.status, r.raw)
	}
	tok := getToken(t, srv.URL)
	s.ExpireTokens()
	if r := rotate(t, srv.URL, tok); r.status != 400 || strings.TrimSpace(r.raw) != `{"error":"invalid_request"}` {
		t.Fatalf("expired token: %d %s", r.status, r.raw)
	}
	off := tokenRequest(t, srv.URL, "off", secret, "")
	r := rotate(t, srv.URL, off.body["access_token"].(string))
	if r.status != 200 || r.body["error"] != "Not found IAM key info for orgId: 3333333" || r.body["status"] != float64(200) {
		t.Fatalf("disabled org: %d %s", r.status, r.raw)
	}
	if s.State().Orgs["3333333"].Rotations != 0 {
		t.Fatal("a disabled org rotated")
	}
}

func TestRotate_ShortTokenTTL(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	_, srv := newSim(t, Config{NoRateLimits: true, TokenTTL: time.Minute, Now: clock})
	tok := getToken(t, srv.URL)
	if r := rotate(t, srv.URL, tok); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	now = now.Add(time.Minute)
	if r := rotate(t, srv.URL, tok); r.status != 400 || r.body["error"] != "invalid_request" {
		t.Fatalf("expired token: %d %s", r.status, r.raw)
	}
}

func TestFaults(t *testing.T) {
	cases := map[string]struct {
		fault     Fault
		status    int
		rotates   bool
		dropped   bool
		bodyCheck func(string) bool
	}{
		"5xx":          {Fault{Kind: "5xx", Status: 502}, 502, false, false, func(b string) bool { return strings.Contains(b, "Bad Gateway") }},
		"5xx default":  {Fault{Kind: "5xx"}, 503, false, false, nil},
		"429":          {Fault{Kind: "429"}, 429, false, false, nil},
		"error200":     {Fault{Kind: "error200"}, 200, false, false, func(b string) bool { return strings.Contains(b, `"error":"Internal error"`) }},
		"expire_token": {Fault{Kind: "expire_token"}, 400, false, false, func(b string) bool { return strings.Contains(b, "invalid_request") }},
		"malformed":    {Fault{Kind: "malformed"}, 200, true, false, func(b string) bool { return json.Unmarshal([]byte(b), new(interface{})) != nil }},
		"empty":        {Fault{Kind: "empty"}, 200, true, false, func(b string) bool { return b == "" }},
		"delay":        {Fault{Kind: "delay", DelayMS: 50}, 200, true, false, nil},
		"drop":         {Fault{Kind: "drop"}, 0, true, true, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, srv := newSim(t, Config{NoRateLimits: true})
			tok := getToken(t, srv.URL)
			s.InjectFault(tc.fault)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/admin/v2/iam/rotateKey", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if tc.dropped {
				if err == nil {
					resp.Body.Close()
					t.Fatal("the connection was not dropped")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || (tc.bodyCheck != nil && !tc.bodyCheck(string(raw))) {
					t.Fatalf("%d %q", resp.StatusCode, raw)
				}
				if resp.Header.Get("Retry-After") != "" {
					t.Fatal("Cisco sends no Retry-After")
				}
			}
			if got := s.State().Orgs[org].Rotations; got != map[bool]int{true: 1, false: 0}[tc.rotates] {
				t.Fatalf("rotations = %d", got)
			}
			// The fault is used up: the next call succeeds.
			if r := rotate(t, srv.URL, tok); r.status != 200 || r.body["currentKeyId"] == nil {
				t.Fatalf("after the fault: %d %s", r.status, r.raw)
			}
		})
	}
	t.Run("count and org filter", func(t *testing.T) {
		s, srv := newSim(t, Config{NoRateLimits: true})
		s.InjectFault(Fault{Kind: "5xx", Count: 2, OrgID: "2222222"})
		tok := getToken(t, srv.URL)
		if r := rotate(t, srv.URL, tok); r.status != 200 {
			t.Fatal("a fault for another org hit")
		}
		other := tokenRequest(t, srv.URL, clientID, secret, "2222222").body["access_token"].(string)
		for i := 0; i < 2; i++ {
			if r := rotate(t, srv.URL, other); r.status != 503 {
				t.Fatalf("call %d: %d", i, r.status)
			}
		}
		if r := rotate(t, srv.URL, other); r.status != 200 {
			t.Fatal("the fault outlived its count")
		}
	})
}

func TestRateLimits(t *testing.T) {
	t.Run("admin 5 per second", func(t *testing.T) {
		s, srv := newSim(t, Config{})
		tok := getToken(t, srv.URL)
		var statuses []int
		for i := 0; i < 6; i++ {
			r := rotate(t, srv.URL, tok)
			statuses = append(statuses, r.status)
			if r.status == 429 && r.header.Get("Retry-After") != "" {
				t.Fatal("Cisco sends no Retry-After")
			}
		}
		if statuses[4] != 200 || statuses[5] != 429 || s.State().RateLimited != 1 || s.State().Orgs[org].Rotations != 5 {
			t.Fatalf("statuses %v state %+v", statuses, s.State())
		}
	})
	t.Run("token 20 per minute", func(t *testing.T) {
		_, srv := newSim(t, Config{})
		for i := 0; i < 20; i++ {
			if r := tokenRequest(t, srv.URL, clientID, secret, ""); r.status != 200 {
				t.Fatalf("token %d: %d", i, r.status)
			}
		}
		if r := tokenRequest(t, srv.URL, clientID, secret, ""); r.status != 429 {
			t.Fatalf("21st token: %d", r.status)
		}
	})
	t.Run("switched off", func(t *testing.T) {
		_, srv := newSim(t, Config{NoRateLimits: true})
		tok := getToken(t, srv.URL)
		for i := 0; i < 20; i++ {
			if r := rotate(t, srv.URL, tok); r.status != 200 {
				t.Fatalf("call %d: %d", i, r.status)
			}
		}
	})
	t.Run("per minute window", func(t *testing.T) {
		log := map[string][]time.Time{}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 14; i++ {
			if !allow(log, "k", adminLimits, now.Add(time.Duration(i)*time.Second)) {
				t.Fatalf("call %d refused", i)
			}
		}
		if allow(log, "k", adminLimits, now.Add(30*time.Second)) {
			t.Fatal("15th call within a minute allowed")
		}
		if !allow(log, "k", adminLimits, now.Add(61*time.Second)) {
			t.Fatal("call after the window refused")
		}
	})
}

func TestAdminEndpoints(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	post := func(path, body string) reply {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		return do(t, req)
	}
	if r := post("/_sim/faults", `{"kind":"nonsense"}`); r.status != 400 {
		t.Fatalf("bad fault: %d", r.status)
	}
	if r := post("/_sim/faults", `{"kind":"5xx","count":1}`); r.status != 200 {
		t.Fatalf("fault: %d", r.status)
	}
	if r := rotate(t, srv.URL, getToken(t, srv.URL)); r.status != 503 {
		t.Fatalf("queued fault not applied: %d", r.status)
	}
	if r := post("/_sim/keys", `{"client_id":"new","client_secret":"s","org_ids":["4444444"]}`); r.status != 200 {
		t.Fatalf("keys: %d", r.status)
	}
	if r := post("/_sim/orgs", `{"org_id":"4444444","disabled":true}`); r.status != 200 {
		t.Fatalf("orgs: %d", r.status)
	}
	tok := tokenRequest(t, srv.URL, "new", "s", "").body["access_token"].(string)
	if r := rotate(t, srv.URL, tok); !strings.Contains(r.raw, "Not found IAM key info") {
		t.Fatalf("disabled via admin endpoint: %s", r.raw)
	}
	if r := post("/_sim/tokens/expire", ""); r.status != 204 {
		t.Fatalf("expire: %d", r.status)
	}
	if r := rotate(t, srv.URL, tok); r.status != 400 {
		t.Fatalf("after expire: %d", r.status)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/_sim/state", nil)
	r := do(t, req)
	orgs := r.body["orgs"].(map[string]interface{})
	if r.status != 200 || orgs["4444444"] == nil || r.body["rotate_calls"] != float64(s.State().RotateCalls) {
		t.Fatalf("state: %s", r.raw)
	}
}

func TestMaxConcurrentPerKey(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	tok := getToken(t, srv.URL)
	s.InjectFault(Fault{Kind: "delay", DelayMS: 200, Count: 2})
	done := make(chan struct{})
	for i := 0; i < 2; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/admin/v2/iam/rotateKey", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	<-done
	<-done
	if got := s.State().MaxConcurrentPerKey; got != 2 {
		t.Fatalf("max concurrent = %d, want 2", got)
	}
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

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }

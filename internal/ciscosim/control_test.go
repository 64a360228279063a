package ciscosim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestFaults(t *testing.T) {
	cases := map[string]struct {
		fault     Fault
		status    int
		rotates   bool
		dropped   bool
		bodyCheck func(string) bool
	}{
		"old_date":     {Fault{Kind: "old_date"}, 200, true, false, func(b string) bool { return strings.Contains(b, "currentKeyId") }},
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
			// A failure is an answer that left the caller without a new key
			// and that it must not simply repeat.
			wantFailures := map[string]int{"5xx": 1, "5xx default": 1, "error200": 1, "malformed": 1, "empty": 1, "drop": 1}[name]
			if got := s.State().Orgs[org].Failures; got != wantFailures {
				t.Fatalf("failures = %d, want %d", got, wantFailures)
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

func TestFailuresCountRefusedTokensAndDisabledOrgs(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	if r := tokenRequest(t, srv.URL, clientID, "wrong", org); r.status != 401 {
		t.Fatalf("wrong secret: %d", r.status)
	}
	s.SetOrg(Org{ID: org, Disabled: true})
	if r := rotate(t, srv.URL, getToken(t, srv.URL)); !strings.Contains(r.raw, "Not found IAM key info") {
		t.Fatalf("disabled: %s", r.raw)
	}
	if got := s.State().Orgs[org].Failures; got != 2 {
		t.Fatalf("failures = %d, want 2", got)
	}
}

func TestRefreshKey(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	before := s.State().Orgs[org]
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/_sim/refresh", strings.NewReader(`{"org_id":"`+org+`"}`))
	r := do(t, req)
	after := s.State().Orgs[org]
	if r.status != 200 || r.body["accessKeyId"] != after.CurrentKeyID || r.body["secretAccessKey"] != after.SecretAccessKey ||
		after.CurrentKeyID == before.CurrentKeyID || after.Refreshes != 1 || after.Rotations != 0 {
		t.Fatalf("refresh: %d %s, state %+v", r.status, r.raw, after)
	}
	s.SetOrg(Org{ID: org, Disabled: true})
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/_sim/refresh", strings.NewReader(`{"org_id":"`+org+`"}`))
	if r := do(t, req); r.status != 404 {
		t.Fatalf("refresh of a disabled org: %d", r.status)
	}
	if s.InjectFault(Fault{Kind: "5xx", Count: 3}); s.State().PendingFaults != 3 {
		t.Fatalf("pending faults = %d", s.State().PendingFaults)
	}
}

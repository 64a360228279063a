package ciscosim

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

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

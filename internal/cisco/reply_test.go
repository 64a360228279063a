package cisco

import (
	"strings"
	"testing"
	"time"
)

func TestParseKeyCreationDate(t *testing.T) {
	want := time.Date(2025, 3, 12, 22, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		in   string
		want time.Time
		ok   bool
	}{
		"cisco zone-less":   {"2025-03-12T22:00:00", want, true},
		"with fraction":     {"2025-03-12T22:00:00.123", want.Add(123 * time.Millisecond), true},
		"rfc3339 utc":       {"2025-03-12T22:00:00Z", want, true},
		"rfc3339 offset":    {"2025-03-13T00:00:00+02:00", want, true},
		"space separator":   {"2025-03-12 22:00:00", want, true},
		"surrounding space": {" 2025-03-12T22:00:00 ", want, true},
		"date only":         {"2025-03-12", time.Time{}, false},
		"garbage":           {"yesterday", time.Time{}, false},
		"empty":             {"", time.Time{}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseKeyCreationDate(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			if tc.ok && (!got.Equal(tc.want) || got.Location() != time.UTC) {
				t.Fatalf("got %v, want %v UTC", got, tc.want)
			}
		})
	}
}

func TestParseRotateReply(t *testing.T) {
	const ok = `{"oldKeyId":"AKIAYGSCHXQI2NAWY4UZ","currentKeyId":"AKIARB5FPGFNZR3BZAXN","secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY","keyCreationDate":"2025-03-12T22:00:00"}`
	cases := map[string]struct {
		status     int
		body       string
		wantErr    string
		ambiguous  bool
		notEnabled bool
	}{
		"documented success":     {200, ok, "", false, false},
		"200 with error":         {200, `{"status":200,"error":"Internal error"}`, "Internal error", false, false},
		"not found iam key info": {200, `{"timestamp":"2025-05-15T04:51:11","status":200,"error":"Not found IAM key info for orgId: 1234567","path":"/iam/rotate-key"}`, "Cisco's dashboard", false, true},
		"400 not found iam key":  {400, `{"status":400,"error":"Not found IAM key info for org 12355."}`, "Cisco's dashboard", false, true},
		"403":                    {403, `{"status":403,"error":"Forbidden"}`, "Forbidden", false, false},
		"500":                    {500, `{"status":500,"error":"Internal Server Error"}`, "outcome unknown", true, false},
		"502 html":               {502, `<html>bad gateway</html>`, "Bad Gateway", true, false},
		"malformed 200":          {200, `{"oldKeyId":"AKIA`, "unreadable", true, false},
		"empty 200":              {200, ``, "unreadable", true, false},
		"200 without key":        {200, `{"oldKeyId":"AKIAYGSCHXQI2NAWY4UZ"}`, "no key pair", true, false},
		"200 with odd key":       {200, `{"currentKeyId":"not a key","secretAccessKey":"x"}`, "unexpected format", true, false},
		"204 empty":              {204, ``, "unreadable", true, false},
		// A key pair in the reply means Cisco may have rotated: never a
		// definite refusal, and a success when the error member is blank.
		"200 with key and blank error": {200, ok[:len(ok)-1] + `,"error":""}`, "", false, false},
		"200 with key and null error":  {200, ok[:len(ok)-1] + `,"error":null}`, "", false, false},
		"200 with key and an error":    {200, ok[:len(ok)-1] + `,"error":"Internal error"}`, "carries a key pair", true, false},
		"400 with key":                 {400, ok, "carries a key pair", true, false},
		"200 with blank error alone":   {200, `{"status":200,"error":""}`, "error member present", false, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			key, err := parseRotateReply(tc.status, []byte(tc.body), time.Now())
			if tc.wantErr == "" {
				if err != nil || key.AccessKeyID != "AKIARB5FPGFNZR3BZAXN" || key.OldAccessKeyID != "AKIAYGSCHXQI2NAWY4UZ" ||
					!key.CreationDate.Equal(time.Date(2025, 3, 12, 22, 0, 0, 0, time.UTC)) {
					t.Fatalf("key %+v err %v", key, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			ce := err.(*Error)
			if ce.Ambiguous != tc.ambiguous || ce.NotEnabled != tc.notEnabled {
				t.Fatalf("ambiguous=%v notEnabled=%v", ce.Ambiguous, ce.NotEnabled)
			}
			if strings.Contains(err.Error(), "wJalrXUtnFEMI") {
				t.Fatal("error carries a secret")
			}
		})
	}
}

func TestParseRotateReply_MissingDateFallsBack(t *testing.T) {
	key, err := parseRotateReply(200, []byte(`{"currentKeyId":"AKIARB5FPGFNZR3BZAXN","secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"}`), time.Now())
	if err != nil || !key.CreationDateMissing || key.CreationDate.IsZero() {
		t.Fatalf("key %+v err %v", key, err)
	}
}

func FuzzParseRotateReply(f *testing.F) {
	f.Add(200, []byte(`{"currentKeyId":"AKIARB5FPGFNZR3BZAXN","secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY","keyCreationDate":"2025-03-12T22:00:00"}`))
	f.Add(200, []byte(`{"status":200,"error":"Not found IAM key info for orgId: 1"}`))
	f.Add(400, []byte(`{"error":"invalid_request"}`))
	f.Add(500, []byte(`{"error":{"nested":true}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		key, err := parseRotateReply(status, body, time.Now())
		if (key == nil) == (err == nil) {
			t.Fatalf("want exactly one of key and error")
		}
		if key != nil {
			if status < 200 || status > 299 || !AccessKeyIDPattern.MatchString(key.AccessKeyID) || !SecretKeyPattern.MatchString(key.SecretAccessKey) {
				t.Fatalf("accepted an invalid reply: %d %+v", status, key)
			}
			if key.CreationDate.Location() != time.UTC {
				t.Fatal("creation date not UTC")
			}
		}
	})
}

func FuzzParseKeyCreationDate(f *testing.F) {
	for _, s := range []string{"2025-03-12T22:00:00", "2025-03-12T22:00:00.5Z", "2025-03-12 22:00:00", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseKeyCreationDate(s)
		if err == nil && got.Location() != time.UTC {
			t.Fatal("not UTC")
		}
	})
}

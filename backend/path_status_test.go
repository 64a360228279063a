package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// TestStatus_UrgencyOrderAndAgreementWithConfig: one answer, stale first,
// then the soonest lockout, then no key; each row agrees with config/<name>;
// unreadable entries are listed; no secret anywhere.
func TestStatus_UrgencyOrderAndAgreementWithConfig(t *testing.T) {
	env := newTestEnv(t)
	for _, name := range []string{"fresh", "old", "stale", "nokey"} {
		env.configureOwnOrg(name, nil)
	}
	env.mustRotate("fresh")
	old := env.clock.Now().Add(-80 * 24 * time.Hour).Format("2006-01-02T15:04:05")
	env.mustWrite("import/old", map[string]interface{}{
		"access_key_id": "AKIAOLDKEY0000000001", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYOLDKEYSECRET", "key_creation_date": old,
		"verify": false,
	})
	env.mustRotate("stale")
	env.injectFault(ciscosim.Fault{Kind: "malformed"})
	if _, err := env.rotate("stale"); err == nil {
		t.Fatal("a lost reply reported success")
	}
	if err := env.storage.Put(context.Background(), &logical.StorageEntry{Key: configPrefix + "broken", Value: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	env.b.orgs.Drop("broken")
	if _, err := env.read("config/broken"); err == nil {
		t.Fatal("an undecodable entry was read")
	}

	data := env.mustRead("status").Data
	rows := env.statusRows()
	var order []string
	for _, row := range rows {
		order = append(order, row["name"])
		cfg := env.mustRead("config/" + row["name"]).Data
		for _, field := range []string{"key_state", "access_key_id", "next_vault_rotation", "consecutive_failures",
			"last_rotation_error", "last_rotation_error_time", "disable_automated_rotation"} {
			if row[field] != lineValue(cfg[field]) {
				t.Errorf("%s: status %s = %q, config read %v", row["name"], field, row[field], cfg[field])
			}
		}
		if row["expires_at"] != lineValue(cfg["key_expires_at"]) {
			t.Errorf("%s: expires_at %v, config key_expires_at %v", row["name"], row["expires_at"], cfg["key_expires_at"])
		}
	}
	if got := strings.Join(order, ","); got != "stale,old,fresh,nokey" {
		t.Fatalf("order %s, want stale,old,fresh,nokey", got)
	}
	if s := rows[1]["seconds_to_lockout"]; s != fmt.Sprint(10*24*3600) {
		t.Fatalf("seconds_to_lockout of a key 80 days old = %v, want 10 days", s)
	}
	if _, ok := rows[3]["seconds_to_lockout"]; ok || rows[3]["expires_at"] != "" {
		t.Fatalf("no key, yet a lockout: %v", rows[3])
	}
	if !strings.Contains(rows[0]["last_rotation_error"], " ") {
		t.Fatalf("the stale row's error %q did not survive its quoting", rows[0]["last_rotation_error"])
	}
	unreadable := data["unreadable"].([]string)
	if len(unreadable) != 1 || unreadable[0] != "broken" {
		t.Fatalf("unreadable = %v", unreadable)
	}
	if line := data["config/broken"].(string); !strings.HasPrefix(line, `unreadable="the stored entry config/broken cannot be decoded`) {
		t.Fatalf("config/broken row %q", line)
	}
	raw := fmt.Sprint(data)
	for _, secret := range []string{testClientSecret, env.simOrg().SecretAccessKey, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYOLDKEYSECRET"} {
		if strings.Contains(raw, secret) {
			t.Fatal("status returned a secret")
		}
	}
}

// Status reads well in Vault's table format, which prints a string or a
// list of strings as it is and anything nested as a Go map dump: one line
// per organization, and lists of names.
func TestStatus_TableFormatPrintsNoNestedValue(t *testing.T) {
	env := newTestEnv(t)
	env.configureOwnOrg("acme", nil)
	env.configureOwnOrg("beta", map[string]interface{}{"disable_automated_rotation": true})
	env.mustRotate("acme")
	data := env.mustRead("status").Data
	for field, v := range jsonRoundTrip(t, data) {
		var s string
		var list []string
		if json.Unmarshal(v, &s) != nil && json.Unmarshal(v, &list) != nil {
			t.Errorf("%s is neither a string nor a list of strings: %s", field, v)
		}
		if strings.Contains(s, "\n") {
			t.Errorf("%s spans lines: %q", field, s)
		}
	}
	if got := fmt.Sprint(data["organizations"]); got != "[acme beta]" {
		t.Fatalf("organizations %s", got)
	}
	beta := data["config/beta"].(string)
	if beta != "key_state=none disable_automated_rotation=true" {
		t.Fatalf("beta's line %q", beta)
	}
}

// statusRows reads status and parses each organization's line, most
// urgent first; "name" holds the organization's name.
func (e *testEnv) statusRows() []map[string]string {
	e.t.Helper()
	data := e.mustRead("status").Data
	var rows []map[string]string
	for _, name := range data["organizations"].([]string) {
		row := parseStatusLine(e.t, data["config/"+name].(string))
		row["name"] = name
		rows = append(rows, row)
	}
	return rows
}

// parseStatusLine splits a status line into its fields, unquoting quoted
// values.
func parseStatusLine(t *testing.T, line string) map[string]string {
	t.Helper()
	row := map[string]string{}
	for line != "" {
		field, rest, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("no = in %q", line)
		}
		var value string
		if strings.HasPrefix(rest, `"`) {
			quoted, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("bad quoting in %q: %v", rest, err)
			}
			value, _ = strconv.Unquote(quoted)
			rest = rest[len(quoted):]
		} else {
			value, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		row[field] = value
		line = strings.TrimPrefix(rest, " ")
	}
	return row
}

// lineValue is a read's value as a status line shows it: empty for nil,
// "", false and 0.
func lineValue(v interface{}) string {
	switch v {
	case nil, "", false, 0:
		return ""
	}
	return fmt.Sprint(v)
}

// BenchmarkStatus10k is the status read of 10,000 organizations, against
// the baseline of what it replaces: 10,000 config reads.
func BenchmarkStatus10k(b *testing.B) {
	be, storage := benchFleet(b, 10000)
	benchRequest(b, be, storage, &logical.Request{Operation: logical.ReadOperation, Path: "status", Storage: storage})
}

func BenchmarkStatus10kBaseline(b *testing.B) {
	be, storage := benchFleet(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 10000; j++ {
			req := &logical.Request{Operation: logical.ReadOperation, Path: fmt.Sprintf("config/org-%05d", j), Storage: storage}
			if _, err := be.HandleRequest(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchFleet is a loaded backend with n organizations.
func benchFleet(b *testing.B, n int) (*backend, *testStorage) {
	storage := newTestStorage()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	seedOrganizations(b, storage, n, now)
	be := benchBackend(b, storage, func() time.Time { return now })
	if err := be.ensureLoaded(context.Background(), storage); err != nil {
		b.Fatal(err)
	}
	return be, storage
}

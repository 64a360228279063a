package backend

import (
	"context"
	"fmt"
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
	rows := data["organizations"].([]map[string]interface{})
	var order []string
	for _, row := range rows {
		order = append(order, row["name"].(string))
		cfg := env.mustRead("config/" + row["name"].(string)).Data
		for _, field := range []string{"key_state", "access_key_id", "next_vault_rotation", "consecutive_failures",
			"last_rotation_error", "last_rotation_error_time", "disable_automated_rotation"} {
			if fmt.Sprint(row[field]) != fmt.Sprint(cfg[field]) {
				t.Errorf("%s: status %s = %v, config read %v", row["name"], field, row[field], cfg[field])
			}
		}
		if fmt.Sprint(row["expires_at"]) != fmt.Sprint(cfg["key_expires_at"]) {
			t.Errorf("%s: expires_at %v, config key_expires_at %v", row["name"], row["expires_at"], cfg["key_expires_at"])
		}
	}
	if got := strings.Join(order, ","); got != "stale,old,fresh,nokey" {
		t.Fatalf("order %s, want stale,old,fresh,nokey", got)
	}
	if s := rows[1]["seconds_to_lockout"]; s != int64(10*24*3600) {
		t.Fatalf("seconds_to_lockout of a key 80 days old = %v, want 10 days", s)
	}
	if rows[3]["seconds_to_lockout"] != nil || rows[3]["expires_at"] != nil {
		t.Fatalf("no key, yet a lockout: %v", rows[3])
	}
	unreadable := data["unreadable"].([]map[string]interface{})
	if len(unreadable) != 1 || unreadable[0]["name"] != "broken" {
		t.Fatalf("unreadable = %v", unreadable)
	}
	raw := fmt.Sprint(data)
	for _, secret := range []string{testClientSecret, env.simOrg().SecretAccessKey, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYOLDKEYSECRET"} {
		if strings.Contains(raw, secret) {
			t.Fatal("status returned a secret")
		}
	}
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

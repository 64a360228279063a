package backend

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
)

func TestCreds_NoKeyYetSaysHowToGetOne(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	resp, err := env.read("creds/acme")
	mustBadRequest(t, resp, err, "rotate/acme")
	mustBadRequest(t, resp, err, "import/acme")
}

func TestCreds_ExactFieldsAndIntegerTimings(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"data_path": "s3://cisco-managed-eu-central-1/1234567_abc", "rotation_period": "30d"})
	env.mustRotate("acme")
	env.clock.Advance(10 * 24 * time.Hour)
	resp := env.mustRead("creds/acme")

	var got []string
	for k := range resp.Data {
		got = append(got, k)
	}
	sort.Strings(got)
	want := "access_key_id,bucket,bucket_arn,data_path,disable_automated_rotation,expires_at,key_check_result,key_creation_date," +
		"key_state,key_verified_at,key_verify_error,last_vault_rotation,next_vault_rotation,old_access_key_id,prefix,region,rotation_period,secret_access_key,ttl,version"
	if strings.Join(got, ",") != want {
		t.Fatalf("creds fields\n got %s\nwant %s", strings.Join(got, ","), want)
	}
	raw := jsonRoundTrip(t, resp.Data)
	if string(raw["ttl"]) != "50" || string(raw["rotation_period"]) != "2592000" {
		t.Fatalf("ttl=%s rotation_period=%s, want JSON integers 50 and 2592000", raw["ttl"], raw["rotation_period"])
	}
	var next string
	if err := json.Unmarshal(raw["next_vault_rotation"], &next); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, next); err != nil || !strings.HasSuffix(next, "Z") {
		t.Fatalf("next_vault_rotation %q is not RFC 3339 UTC", next)
	}

	// Overdue: ttl is the re-read interval, never 0 or negative.
	env.clock.Advance(25 * 24 * time.Hour)
	resp = env.mustRead("creds/acme")
	if resp.Data["ttl"] != int64(credsRereadInterval/time.Second) {
		t.Fatalf("overdue ttl = %v", resp.Data["ttl"])
	}
}

func TestCreds_ScheduleStillReportsRotationPeriod(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_schedule": "0 3 * * *", "rotation_window": "1h"})
	env.mustRotate("acme")
	resp := env.mustRead("creds/acme")
	raw := jsonRoundTrip(t, resp.Data)
	if string(raw["rotation_period"]) != "86400" || string(raw["rotation_window"]) != "3600" || string(raw["rotation_schedule"]) != `"0 3 * * *"` {
		t.Fatalf("schedule timings: %s %s %s", raw["rotation_period"], raw["rotation_window"], raw["rotation_schedule"])
	}
	// The clock is at 12:00; the next run is 03:00 tomorrow, but consumers
	// re-read every 51 s.
	if resp.Data["ttl"] != int64(50) {
		t.Fatalf("ttl = %v, want %d", resp.Data["ttl"], 50)
	}
}

func TestCreds_ReadNeverSeesATornPair(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.b.limiter = cisco.NewLimiter(cisco.WithLimits())
	env.mustRotate("acme")

	var mu sync.Mutex
	issued := map[string]string{} // access key id -> secret, as Cisco issued
	record := func() {
		org := env.simOrg()
		mu.Lock()
		issued[org.CurrentKeyID] = org.SecretAccessKey
		mu.Unlock()
	}
	record()
	done := make(chan struct{})
	var readers sync.WaitGroup
	torn := make(chan string, 1)
	for i := 0; i < 8; i++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := env.read("creds/acme")
				if err != nil || resp.IsError() {
					continue
				}
				id, secret := resp.Data["access_key_id"].(string), resp.Data["secret_access_key"].(string)
				mu.Lock()
				want, known := issued[id]
				mu.Unlock()
				if known && want != secret {
					select {
					case torn <- id:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		env.mustRotate("acme")
		record()
		// A read after a rotation never serves the old key.
		env.assertServesSimKey("acme")
	}
	close(done)
	readers.Wait()
	select {
	case id := <-torn:
		t.Fatalf("a read paired %s with another version's secret", id)
	default:
	}
}

func TestCreds_ServedFromMemory(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	gets := env.storage.gets.Load()
	for i := 0; i < 100; i++ {
		env.mustRead("creds/acme")
	}
	if got := env.storage.gets.Load() - gets; got != 0 {
		t.Fatalf("100 creds reads did %d storage reads, want 0", got)
	}
}

func TestCreds_InvalidateDropsCachedKey(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	// Another node wrote a newer key: storage changes, then Vault invalidates.
	other := map[string]interface{}{"access_key_id": "AKIAOTHERNODE0000001", "secret_access_key": strings.Repeat("s", 40),
		"key_creation_date": env.clock.Now(), "last_vault_rotation": env.clock.Now(), "version": 7}
	if err := seedJSON(t.Context(), env.storage, keyPrefix+"acme", other); err != nil {
		t.Fatal(err)
	}
	env.b.invalidate(t.Context(), keyPrefix+"acme")
	resp := env.mustRead("creds/acme")
	if resp.Data["access_key_id"] != other["access_key_id"] || resp.Data["version"] != 7 {
		t.Fatalf("after invalidate: %v", resp.Data["access_key_id"])
	}
}

// TestCreds_TTLBoundsConsumerPickup: Vault Agent re-reads at ttl + 1 s, so
// ttl bounds how long a consumer keeps a replaced key. It is at most 50 s
// whatever the period, never past the next scheduled rotation, and never 0.
func TestCreds_TTLBoundsConsumerPickup(t *testing.T) {
	cases := map[string]struct {
		config  map[string]interface{}
		advance time.Duration
		want    int64
	}{
		"30-day period, just rotated": {map[string]interface{}{"rotation_period": "30d"}, 0, 50},
		"due in 30 s":                 {map[string]interface{}{"rotation_period": "30d"}, 30*24*time.Hour - 30*time.Second, 30},
		"due in under a second":       {map[string]interface{}{"rotation_period": "30d"}, 30*24*time.Hour - 400*time.Millisecond, 1},
		"overdue":                     {map[string]interface{}{"rotation_period": "30d"}, 31 * 24 * time.Hour, 50},
		"automated rotation off":      {map[string]interface{}{"disable_automated_rotation": true}, 0, 50},
		"schedule, next run in 15 h":  {map[string]interface{}{"rotation_schedule": "0 3 * * *"}, 0, 50},
		"schedule, next run in 10 s":  {map[string]interface{}{"rotation_schedule": "0 3 * * *"}, 15*time.Hour - 10*time.Second, 10},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", tc.config)
			env.mustRotate("acme")
			env.clock.Advance(tc.advance)
			resp := env.mustRead("creds/acme")
			if got := jsonRoundTrip(t, resp.Data)["ttl"]; string(got) != fmt.Sprint(tc.want) {
				t.Fatalf("ttl = %s, want %d", got, tc.want)
			}
		})
	}
}

// Consumers re-read every 2 s from the moment a rotation is due until it
// lands: Cisco kills the old key at the rotation.
func TestCreds_TTLIsOneSecondWhileARotationIsDue(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d"})
	env.mustRotate("acme")
	env.clock.Advance(30*24*time.Hour - 20*time.Second)
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl != int64(20) {
		t.Fatalf("ttl 20 s before the rotation: %v", ttl)
	}
	env.clock.Advance(30 * time.Second)
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl != int64(1) {
		t.Fatalf("ttl while the rotation is due: %v, want 1", ttl)
	}
	// A rotation that has not landed for long stops the fast re-reads.
	env.clock.Advance(overdueReread)
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl == int64(1) {
		t.Fatal("ttl stays 1 s long after the due time")
	}
	env.tick()
	if ttl := env.mustRead("creds/acme").Data["ttl"]; ttl != int64(50) {
		t.Fatalf("ttl after the rotation landed: %v, want 50", ttl)
	}
}

package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

func TestMetrics_AgreeWithConfigReads(t *testing.T) {
	env := newTestEnv(t)
	env.configure("good", nil)
	env.configureOwnOrg("failing", nil)
	env.mustRotate("good")
	env.mustRotate("failing")
	env.injectFault(ciscosim.Fault{Kind: "malformed"})
	if _, err := env.rotate("failing"); err == nil {
		t.Fatal("a lost reply reported success")
	}
	env.clock.Advance(time.Hour)
	families, body := env.scrape()

	unix := func(v interface{}) float64 {
		ts, err := time.Parse(time.RFC3339, v.(string))
		if err != nil {
			t.Fatal(err)
		}
		return float64(ts.Unix())
	}
	for _, name := range []string{"good", "failing"} {
		cfg := env.mustRead("config/" + name).Data
		stale := map[bool]float64{true: 1, false: 0}[cfg["key_state"] == "stale"]
		want := map[string]float64{
			"cisco_s3_key_expiry_timestamp_seconds":               unix(cfg["key_expires_at"]),
			"cisco_s3_next_rotation_timestamp_seconds":            unix(cfg["next_vault_rotation"]),
			"cisco_s3_key_stale":                                  stale,
			"cisco_s3_rotation_consecutive_failures":              float64(cfg["consecutive_failures"].(int)),
			"cisco_s3_last_successful_rotation_timestamp_seconds": unix(cfg["last_vault_rotation"]),
			"cisco_s3_key_creation_timestamp_seconds":             unix(cfg["key_expires_at"]) - keyLifetime.Seconds(),
		}
		for family, v := range want {
			if got, ok := sample(families, family, map[string]string{"name": name}); !ok || got != v {
				t.Errorf("%s{name=%q} = %v (present %v), config read says %v", family, name, got, ok, v)
			}
		}
	}
	if v, _ := sample(families, "cisco_s3_key_stale", map[string]string{"name": "failing"}); v != 1 {
		t.Fatal("the lost reply did not show as a stale key")
	}
	for _, c := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"cisco_s3_rotations_total", map[string]string{"name": "good", "trigger": "manual", "result": "success"}, 1},
		{"cisco_s3_rotations_total", map[string]string{"name": "failing", "trigger": "manual", "result": "success"}, 1},
		{"cisco_s3_rotations_total", map[string]string{"name": "failing", "trigger": "manual", "result": "failure"}, 1},
		{"cisco_s3_cisco_requests_total", map[string]string{"endpoint": "rotate_key", "code": "200"}, 3},
		{"cisco_s3_cisco_requests_total", map[string]string{"endpoint": "token", "code": "200"}, 2},
		{"cisco_s3_cisco_request_duration_seconds", map[string]string{"endpoint": "rotate_key"}, 3},
	} {
		if got, _ := sample(families, c.family, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.labels, got, c.want)
		}
	}
	for _, secret := range []string{testClientSecret, env.simOrg().SecretAccessKey} {
		if strings.Contains(body, secret) {
			t.Fatal("a secret reached the metrics")
		}
	}

	env.mustRequest(logical.DeleteOperation, "config/failing", nil)
	families, _ = env.scrape()
	for _, family := range []string{"cisco_s3_key_stale", "cisco_s3_rotations_total"} {
		if _, ok := sample(families, family, map[string]string{"name": "failing"}); ok {
			t.Errorf("%s still has the deleted organization", family)
		}
	}
}

// BenchmarkMetrics10k renders the metrics of 10,000 organizations, against
// the status read of the same organizations.
func BenchmarkMetrics10k(b *testing.B) {
	be, storage := benchFleet(b, 10000)
	benchRequest(b, be, storage, &logical.Request{Operation: logical.ReadOperation, Path: "metrics", Storage: storage})
}

package backend

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// The gauges of the scheduled checks: a configured organization without a
// key is missing; a checked key has its last answered check and its
// interval; an interval of 0 has none.
func TestMetrics_KeyCheckGauges(t *testing.T) {
	env := newTestEnv(t)
	env.configureOwnOrg("nokey", nil)
	env.configure("acme", map[string]interface{}{"key_check_interval": "10m"})
	env.mustRotate("acme")
	k := env.waitKey("acme", func(k *keyState) bool { return !k.CheckedAt().IsZero() })
	env.configureOwnOrg("unchecked", map[string]interface{}{"key_check_interval": 0})
	env.mustRotate("unchecked")
	families, _ := env.scrape()
	if v := gaugeValue(t, families, keyMissingMetric, "nokey"); v != 1 {
		t.Fatalf("%s{nokey} = %v, want 1", keyMissingMetric, v)
	}
	if v := gaugeValue(t, families, keyMissingMetric, "acme"); v != 0 {
		t.Fatalf("%s{acme} = %v, want 0", keyMissingMetric, v)
	}
	if v := gaugeValue(t, families, lastCheckedMetric, "acme"); v != float64(k.CheckedAt().Unix()) {
		t.Fatalf("%s{acme} = %v, want %d", lastCheckedMetric, v, k.CheckedAt().Unix())
	}
	if v := gaugeValue(t, families, checkIntervalMetric, "acme"); v != 600 {
		t.Fatalf("%s{acme} = %v, want 600", checkIntervalMetric, v)
	}
	if _, ok := sample(families, checkIntervalMetric, map[string]string{"name": "unchecked"}); ok {
		t.Fatalf("%s{unchecked} is present with the scheduled checks off", checkIntervalMetric)
	}
}

// The metrics help names every metric the mount exports, and no other:
// every family of a scrape in which each counter has counted, and every
// metric name in the package's source.
func TestMetrics_HelpNamesEveryMetric(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.mustWrite("verify/acme", nil)
	families, _ := env.scrape()

	helpNames := map[string]bool{}
	for _, name := range metricName.FindAllString(pathMetricsHelpDesc, -1) {
		helpNames[name] = true
	}
	exported := map[string]bool{}
	for name := range families {
		exported[name] = true
	}
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range sources {
		if strings.HasSuffix(file, "_test.go") || file == "path_metrics.go" {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(src), -1) {
			exported[name] = true
		}
	}
	for name := range exported {
		if !helpNames[name] {
			t.Errorf("the metrics help does not name %s", name)
		}
	}
	for name := range helpNames {
		if _, scraped := families[name]; !scraped {
			t.Errorf("the metrics help names %s, which a scrape does not export", name)
		}
	}
}

// metricName matches the names of the plugin's metrics.
var metricName = regexp.MustCompile(`\bcisco_s3_[a-z0-9_]*[a-z0-9]`)

// The counters' help lists every trigger and result the code counts, as
// docs/api.md does: the lists are the code's constants, all of them.
func TestMetrics_HelpListsEveryTrigger(t *testing.T) {
	constants := func(file, pattern string) []string {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var values []string
		for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(string(src), -1) {
			values = append(values, m[1])
		}
		if len(values) == 0 {
			t.Fatalf("no constants in %s", file)
		}
		return values
	}
	rotationTriggers := constants("../internal/bucketkey/events.go", `(?m)^\s+Trigger\w+\s+= "([a-z]+)"`)
	results := constants("../internal/bucketkey/effects.go", `(?m)^\s+Count\w+\s+Outcome = "([a-z_]+)"`)
	checks := constants("keyprobe.go", `(?m)^\s+check\w+\s+= "([a-z]+)"`)

	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.mustWrite("verify/acme", nil)
	families, _ := env.scrape()
	api := readDoc(t, "docs/api.md")
	for family, words := range map[string][]string{
		"cisco_s3_rotations_total":  append(slices.Clone(rotationTriggers), results...),
		"cisco_s3_key_checks_total": checks,
	} {
		f := families[family]
		if f == nil {
			t.Fatalf("no %s in a scrape", family)
		}
		row := regexp.MustCompile("(?m)^\\| `" + family + "[^\n]*").FindString(api)
		for _, w := range words {
			if !strings.Contains(f.GetHelp(), w) {
				t.Errorf("%s's help does not list %q: %s", family, w, f.GetHelp())
			}
			if !strings.Contains(row, "`"+w+"`") {
				t.Errorf("docs/api.md's row of %s does not list %q", family, w)
			}
		}
	}
}

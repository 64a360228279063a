//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPrometheusScrape: a real Prometheus scrapes the plugin through Vault
// with a token that may read only cisco-s3/metrics, sees a healthy
// organization's series, and fires the failure alert of the repository's
// rules (with short for: durations) once an organization's API key breaks.
func TestPrometheusScrape(t *testing.T) {
	t.Parallel()
	plugins := pluginDir(t)
	s := startSim(t)
	v := startDevVault(t, plugins)
	v.enablePlugin(t, plugins)
	v.configure(t, s, "healthy", simClient, simSecret)
	v.configure(t, s, "breaking", autoClient, autoSecret)
	v.must(t, "write", "-f", mountPrefix+"/rotate/healthy")
	v.must(t, "write", "-f", mountPrefix+"/rotate/breaking")

	dir := t.TempDir()
	policy := filepath.Join(dir, "metrics.hcl")
	writeFile(t, policy, `path "cisco-s3/metrics" { capabilities = ["read"] }`)
	v.must(t, "policy", "write", "cisco-s3-metrics", policy)
	scrapeToken := clientToken(t, v.must(t, "token", "create", "-policy=cisco-s3-metrics"))
	otherToken := clientToken(t, v.must(t, "token", "create", "-policy=default"))

	t.Run("a token without the policy gets 403", func(t *testing.T) {
		for token, want := range map[string]int{otherToken: http.StatusForbidden, scrapeToken: http.StatusOK} {
			req, _ := http.NewRequest(http.MethodGet, v.addr+"/v1/"+mountPrefix+"/metrics", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("metrics with the %s token: %d, want %d", map[bool]string{true: "scrape", false: "default"}[token == scrapeToken], resp.StatusCode, want)
			}
			if want == http.StatusOK && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
		}
	})

	t.Run("the CLI shows the metrics with -format=raw, as the docs say", func(t *testing.T) {
		out := v.must(t, "read", "-format=raw", mountPrefix+"/metrics")
		if !strings.Contains(out, "# HELP cisco_s3_rotations_total") || !strings.Contains(out, `cisco_s3_key_stale{name="healthy"} 0`) {
			t.Fatalf("vault read -format=raw %s/metrics:\n%s", mountPrefix, out)
		}
	})

	prom := startPrometheus(t, v, scrapeToken)

	t.Run("the healthy organization's series", func(t *testing.T) {
		cfg := v.data(t, "read", mountPrefix+"/config/healthy")
		expires, err := time.Parse(time.RFC3339, cfg["key_expires_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{
			`up{job="cisco-s3"}`:                                                         1,
			`cisco_s3_key_stale{name="healthy"}`:                                         0,
			`cisco_s3_rotation_consecutive_failures{name="healthy"}`:                     0,
			`cisco_s3_key_expiry_timestamp_seconds{name="healthy"}`:                      float64(expires.Unix()),
			`cisco_s3_rotations_total{name="healthy",trigger="manual",result="success"}`: 1,
		}
		for query, value := range want {
			waitFor(t, 30*time.Second, "Prometheus to have "+query, func() bool {
				got, ok := prom.query(t, query)
				return ok && got == value
			})
		}
	})

	t.Run("a broken API key fires CiscoS3RotationFailing", func(t *testing.T) {
		s.post(t, "/_sim/keys", fmt.Sprintf(`{"client_id":%q,"client_secret":"revoked","org_ids":[%q]}`, autoClient, autoOrg))
		s.post(t, "/_sim/tokens/expire", "{}")
		for i := 0; i < 3; i++ {
			v.fails(t, "rejected the API key", "write", "-f", mountPrefix+"/rotate/breaking")
		}
		started := time.Now()
		waitFor(t, 90*time.Second, "the CiscoS3RotationFailing alert to fire for breaking", func() bool {
			return prom.firing(t, "CiscoS3RotationFailing", "breaking")
		})
		t.Logf("the alert fired %.1f s after the third failure", time.Since(started).Seconds())
		if prom.firing(t, "CiscoS3RotationFailing", "healthy") {
			t.Fatal("the alert fired for the healthy organization")
		}
	})
}

// prometheus is a running Prometheus server.
type prometheus struct{ url string }

func startPrometheus(t *testing.T, v *vault, token string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "vault-token")
	writeFile(t, tokenFile, token)
	rules, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "prometheus", "cisco-s3-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// A test copy: every for: is 1 s, so that alerts fire within the test.
	short := regexp.MustCompile(`(?m)^(\s+for:) .*$`).ReplaceAll(rules, []byte("$1 1s"))
	writeFile(t, filepath.Join(dir, "rules.yml"), string(short))
	target := strings.TrimPrefix(v.addr, "http://")
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: cisco-s3
    metrics_path: /v1/cisco-s3/metrics
    authorization:
      credentials_file: %s
    static_configs:
      - targets: [%q]
`, tokenFile, target))
	port := freePort(t)
	p := start(t, nil, "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	prom := &prometheus{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	waitFor(t, time.Minute, "Prometheus to be ready", func() bool {
		resp, err := http.Get(prom.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.log.String())
		}
	})
	return prom
}

// query returns the value of an instant query with one series.
func (p *prometheus) query(t *testing.T, q string) (float64, bool) {
	t.Helper()
	var out struct {
		Data struct {
			Result []struct {
				Value [2]interface{} `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	p.get(t, "/api/v1/query?query="+url.QueryEscape(q), &out)
	if len(out.Data.Result) != 1 {
		return 0, false
	}
	v, err := strconv.ParseFloat(fmt.Sprint(out.Data.Result[0].Value[1]), 64)
	return v, err == nil
}

// firing reports whether alert fires for the organization name.
func (p *prometheus) firing(t *testing.T, alert, name string) bool {
	t.Helper()
	var out struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	p.get(t, "/api/v1/alerts", &out)
	for _, a := range out.Data.Alerts {
		if a.Labels["alertname"] == alert && a.Labels["name"] == name && a.State == "firing" {
			return true
		}
	}
	return false
}

func (p *prometheus) get(t *testing.T, path string, out interface{}) {
	t.Helper()
	resp, err := http.Get(p.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

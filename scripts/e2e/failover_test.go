//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFailoverAtScale is make bench-failover: a 3-node Raft cluster with
// FAILOVER_ORGS organizations (10,000 in the make target), creds read
// through the standbys throughout, and the active node killed. It prints
// how long reads fail, their latency after the election, what the new
// active node's load and first tick cost, and its plugin's memory; and it
// fails when a goal is missed. make test skips it.
func TestFailoverAtScale(t *testing.T) {
	orgs, _ := strconv.Atoi(os.Getenv("FAILOVER_ORGS"))
	if orgs <= 0 {
		t.Skip("make bench-failover runs this (FAILOVER_ORGS=10000)")
	}
	const (
		readers      = 8
		readPause    = 20 * time.Millisecond
		afterElected = 60 * time.Second
	)
	plugins := pluginDir(t)
	// Every Cisco call is counted: nothing is due, so any call is a burst
	// that the failover caused.
	var ciscoCalls atomic.Int64
	cisco := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ciscoCalls.Add(1)
		http.Error(w, `{"error":"not served here"}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(cisco.Close)

	nodes := formRaftCluster(t, plugins)
	leader := nodes[0]
	leader.enablePlugin(t, plugins)
	began := time.Now()
	writeFleet(t, leader.vault, cisco.URL, orgs)
	t.Logf("wrote %d organizations (config and key) in %v", orgs, time.Since(began).Round(time.Second))

	standbys := nodes[1:]
	for _, n := range standbys {
		waitFor(t, time.Minute, "a creds read through "+n.id, func() bool {
			code, _ := apiRead(n.vault, credsPath(0))
			return code == http.StatusOK
		})
	}

	// Readers: random organizations, through both standbys, all along.
	var (
		mu    sync.Mutex
		reads []timedRead
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(i)))
			n := standbys[i%len(standbys)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				at := time.Now()
				code, _ := apiRead(n.vault, credsPath(rng.Intn(orgs)))
				r := timedRead{at: at, took: time.Since(at), ok: code == http.StatusOK}
				mu.Lock()
				reads = append(reads, r)
				mu.Unlock()
				time.Sleep(readPause)
			}
		}(i)
	}
	time.Sleep(5 * time.Second)

	callsBefore := ciscoCalls.Load()
	killedAt := time.Now()
	leader.p.kill()
	var active *raftNode
	waitForEvery(t, 2*time.Minute, 50*time.Millisecond, "a new active node", func() bool {
		for _, n := range standbys {
			if isActive(n.vault) {
				active = n
				return true
			}
		}
		return false
	})
	activeAt := time.Now()
	// Raft's election ends when the new leader enters its leader state;
	// Vault then sets up every mount (post-unseal) before it serves.
	electedAt := logTime(t, active.p.log.String(), "entering leader state")
	time.Sleep(afterElected)
	// The first tick runs within Vault's periodic interval (a minute).
	var tick, load map[string]string
	waitFor(t, 90*time.Second, "the new active node's first tick", func() bool {
		log := active.p.log.String()
		tick, load = logFields(log, "tick finished", "first=true"), logFields(log, "loaded the organizations", "")
		for _, m := range []map[string]string{tick, load} {
			for k, v := range m {
				m[k] = strings.Trim(v, `"`)
			}
		}
		return tick != nil
	})
	close(stop)
	wg.Wait()

	firstOK, failed := time.Duration(-1), 0
	var window []time.Duration
	windowFailed := 0
	for _, r := range reads {
		done := r.at.Add(r.took)
		if r.at.After(killedAt) && r.ok && (firstOK < 0 || done.Sub(killedAt) < firstOK) {
			firstOK = done.Sub(killedAt)
		}
		if r.at.After(killedAt) && !r.ok {
			failed++
		}
		if !r.at.Before(electedAt) && r.at.Before(electedAt.Add(afterElected)) {
			if r.ok {
				window = append(window, r.took)
			} else {
				windowFailed++
			}
		}
	}
	sort.Slice(window, func(i, j int) bool { return window[i] < window[j] })
	election := electedAt.Sub(killedAt)
	rss := pluginRSS(active.p.cmd.Process.Pid)

	t.Logf("failover at %d organizations, %d readers through the standbys:", orgs, readers)
	t.Logf("  raft election (kill to a new leader)            %v", election.Round(10*time.Millisecond))
	t.Logf("  leader to active (Vault's post-unseal setup)    %v", activeAt.Sub(electedAt).Round(10*time.Millisecond))
	t.Logf("  kill to the first successful creds read         %v (%v after the election)", firstOK.Round(10*time.Millisecond), (firstOK - election).Round(10*time.Millisecond))
	t.Logf("  failed reads after the kill                     %d", failed)
	if len(window) > 0 {
		t.Logf("  creds latency, %v after the election           p50 %v, p99 %v, max %v (%d reads, %d failed)", afterElected,
			quantile(window, 0.50), quantile(window, 0.99), window[len(window)-1], len(window), windowFailed)
	}
	t.Logf("  new active node's load                          %s organizations in %s, %s storage reads", load["organizations"], load["duration"], load["storage_reads"])
	t.Logf("  new active node's first tick                    %s, %s storage reads", tick["duration"], tick["storage_reads"])
	t.Logf("  plugin RSS on the new active node               %.1f MiB", float64(rss)/(1<<20))
	t.Logf("  Cisco calls after the kill                      %d", ciscoCalls.Load()-callsBefore)

	if firstOK < 0 || firstOK-election > 2*time.Second {
		t.Errorf("goal: creds served within 2 s of the election; took %v", firstOK-election)
	}
	if d, err := time.ParseDuration(tick["duration"]); err != nil || d > 10*time.Second {
		t.Errorf("goal: the first tick under 10 s; took %s", tick["duration"])
	}
	if n := ciscoCalls.Load() - callsBefore; n != 0 {
		t.Errorf("goal: no rotation burst; %d Cisco calls after the kill with nothing due", n)
	}
}

type timedRead struct {
	at   time.Time
	took time.Duration
	ok   bool
}

func credsPath(i int) string { return fmt.Sprintf("%s/creds/org%05d", mountPrefix, i) }

// writeFleet configures n organizations that point at cisco, each with an
// imported key of an age between 0 and 29 days, so that none is due.
func writeFleet(t *testing.T, v *vault, cisco string, n int) {
	t.Helper()
	const workers = 16
	now := time.Now().UTC()
	names := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				name := fmt.Sprintf("org%05d", i)
				cfg := map[string]interface{}{
					"provider": "umbrella", "client_id": fmt.Sprintf("client-%05d", i), "client_secret": "fleet-secret-" + name,
					"org_id": strconv.Itoa(2000000 + i), "api_url": cisco + "/admin/v2", "token_url": cisco + "/auth/v2/token",
					"sts_url": cisco, "key_check": false, "verify_connection": false,
				}
				key := map[string]interface{}{
					"access_key_id": fmt.Sprintf("AKIAFLEET%011d", i), "secret_access_key": fmt.Sprintf("fleetSecret%029d", i),
					"key_creation_date": now.Add(-time.Duration(i%30) * 24 * time.Hour).Format(time.RFC3339), "verify": false,
				}
				if code, out := apiWrite(v, mountPrefix+"/config/"+name, cfg); code/100 != 2 {
					errs <- fmt.Errorf("config/%s: %d %s", name, code, out)
					return
				}
				if code, out := apiWrite(v, mountPrefix+"/import/"+name, key); code/100 != 2 {
					errs <- fmt.Errorf("import/%s: %d %s", name, code, out)
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			close(names)
			t.Fatal(err)
		case names <- i:
		}
	}
	close(names)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

var apiClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func apiRead(v *vault, path string) (int, string) { return apiCall(v, http.MethodGet, path, nil) }

func apiWrite(v *vault, path string, body map[string]interface{}) (int, string) {
	return apiCall(v, http.MethodPut, path, body)
}

// apiCall sends one request to Vault's HTTP API and returns the status and
// the body; a transport error is status 0.
func apiCall(v *vault, method, path string, body map[string]interface{}) (int, string) {
	var buf bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	req, err := http.NewRequest(method, v.addr+"/v1/"+path, &buf)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("X-Vault-Token", v.token)
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.String()
}

// isActive asks sys/health, which answers 200 on the active node only.
func isActive(v *vault) bool {
	resp, err := apiClient.Get(v.addr + "/v1/sys/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func waitForEvery(t *testing.T, timeout, every time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(every)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// logTime is the time of the first Vault log line that contains msg.
func logTime(t *testing.T, log, msg string) time.Time {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, msg) {
			at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", strings.Fields(line)[0])
			if err != nil {
				t.Fatalf("no time in %q: %v", line, err)
			}
			return at
		}
	}
	t.Fatalf("no log line with %q", msg)
	return time.Time{}
}

// logFields finds the last plugin log line with msg (and with also, when
// set) and returns its key=value fields.
func logFields(log, msg, also string) map[string]string {
	var found map[string]string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, msg+":") || (also != "" && !strings.Contains(line, also)) {
			continue
		}
		found = map[string]string{}
		for _, m := range logField.FindAllStringSubmatch(line, -1) {
			found[m[1]] = m[2]
		}
	}
	return found
}

var logField = regexp.MustCompile(`([a-z_]+)=("[^"]*"|\S+)`)

// pluginRSS sums the resident memory of the plugin processes that the
// Vault process pid started.
func pluginRSS(pid int) int64 {
	var total int64
	for _, child := range childPIDs(pid) {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(child), "cmdline"))
		if !strings.Contains(string(cmdline), pluginName) {
			continue
		}
		status, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(child), "status"))
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[int(q*float64(len(sorted)-1))].Round(100 * time.Microsecond)
}

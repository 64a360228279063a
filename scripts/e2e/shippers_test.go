//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The shippers' goals, per event: a scheduled or graceful rotation costs at
// most AWS's propagation delay plus 2 s at every shipper; a plain manual
// rotation at most 65 s; a heal at most 65 s after Vault serves the healed
// key. Outside those windows, no listing may fail.
const (
	plannedGoal = gapGoal
	manualGoal  = 65 * time.Second
	healGoal    = 65 * time.Second
)

// shipper is one long-running shipper process and the recipe that feeds it.
type shipper struct {
	name   string // the SDK, as the table prints it
	recipe string
	log    string // its listings, one shipperLine each
	runs   string // one line per credential_process run ("" for none)
	p      *proc  // its process, or its supervisor's
}

// shipperEvent is one key change: listings may fail from at on, until the
// goal counted from from.
type shipperEvent struct {
	name     string
	at, from time.Time
	goal     time.Duration
}

// pushCall is one call of the push recipe, as the recording endpoint saw it.
type pushCall struct {
	status        int
	keyID, secret string
	category      string
	auth          string
}

// TestShippers runs long-running shippers on aws-sdk-go-v2, botocore and the
// AWS SDK for Ruby, each listing the simulator's bucket every second through
// one client built once, fed by the recipes in deploy/vault-agent/ (the
// agent configs as they are, with the host's paths replaced and AppRole
// set up as the README does): three through cisco-s3-credential-process
// and a Vault Agent rendering its file, and one on static keys under Vault
// Agent's process supervisor. Through a
// scheduled rotation, a graceful and a plain manual rotation and the heal of
// a dashboard refresh, no shipper is restarted except by the supervisor. The
// test prints, per shipper and event, how long listing failed, and fails
// when a goal is missed, a listing fails outside the windows or for another
// reason than S3 refusing a key, or a shipper pauses. An agent of its own
// runs the Splunk push recipe against a local endpoint that records each
// call: one successful call per key, carrying it.
func TestShippers(t *testing.T) {
	t.Parallel()
	python, ruby := "/usr/bin/python3", "/usr/bin/ruby"
	for _, bin := range []string{python, ruby} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v (make deps installs python3-botocore and ruby-aws-sdk-s3)", bin, err)
		}
	}
	const name = "shippers"
	plugins := pluginDir(t)
	s := startSim(t, "-propagation-delay", propagationDelay.String())
	v := startDevVault(t, plugins)
	v.enablePlugin(t, plugins)
	org := s.org(t, awsOrg)
	bucket, prefix, region := bucketOf(t, org.DataPath)
	v.configure(t, s, name, awsClient, awsSecret, "org_id="+awsOrg, "data_path="+org.DataPath,
		"rotation_period=60s", "key_check_interval=1m")
	v.must(t, "write", "-f", mountPrefix+"/rotate/"+name)
	served := []simOrgState{s.org(t, awsOrg)}

	dir := t.TempDir()
	helper := filepath.Join(dir, "cisco-s3-credential-process")
	openProduct(t, v2, "cisco-s3-credential-process", "cisco-s3-credential-process").unpack(t, helper)
	recipes := filepath.Join(repoRoot(t), "deploy", "vault-agent")
	creds := "cisco-s3/creds/" + name

	// The push recipe's endpoint: the first call fails, to show that a
	// failed push is made again.
	var pushMu sync.Mutex
	var pushes []pushCall
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		pushMu.Lock()
		defer pushMu.Unlock()
		c := pushCall{status: http.StatusOK, keyID: r.PostForm.Get("key_id"), secret: r.PostForm.Get("secret_key"),
			category: r.PostForm.Get("category"), auth: r.Header.Get("Authorization")}
		if r.Method != http.MethodPost || r.URL.Path != "/servicesNS/nobody/Splunk_TA_aws/splunk_ta_aws_aws_account/cisco_s3_e2e" {
			c.status = http.StatusNotFound
		} else if len(pushes) == 0 {
			c.status = http.StatusServiceUnavailable
		}
		pushes = append(pushes, c)
		w.WriteHeader(c.status)
		fmt.Fprint(w, `{"entry":[]}`)
	}))
	t.Cleanup(recorder.Close)
	splunkToken := writeFile(t, filepath.Join(dir, "splunk.token"), "e2e-splunk-token")

	// The Vault side as the README sets it up: a policy that reads the
	// organization's creds, and an AppRole whose ids the agents read.
	v.must(t, "policy", "write", "cisco-s3-shippers", writeFile(t, filepath.Join(dir, "policy.hcl"),
		fmt.Sprintf("path %q { capabilities = [\"read\"] }\n", mountPrefix+"/creds/"+name)))
	v.must(t, "auth", "enable", "approle")
	v.must(t, "write", "auth/approle/role/logship", "token_policies=cisco-s3-shippers", "token_ttl=1h", "token_max_ttl=24h")
	roleID := writeFile(t, filepath.Join(dir, "role-id"), strings.TrimSpace(v.must(t, "read", "-format=table", "-field=role_id", "auth/approle/role/logship/role-id")))
	secretID := writeFile(t, filepath.Join(dir, "secret-id"), strings.TrimSpace(v.must(t, "write", "-f", "-format=table", "-field=secret_id", "auth/approle/role/logship/secret-id")))
	// agentConfig is one of the documented agent configs with its host
	// paths replaced by the test's.
	agentConfig := func(file, dir string, pairs ...string) string {
		return recipe(t, file, dir, append([]string{`address = "https://vault.example.com:8200"`, fmt.Sprintf("address = %q", v.addr),
			"/etc/vault-agent/role-id", roleID, "/etc/vault-agent/secret-id", secretID}, pairs...)...)
	}

	// The credential process's agent (agent.hcl) renders its file.
	rendered := filepath.Join(dir, "cisco-s3.json")
	filesAgent := start(t, addrEnv(v.addr), vaultBin(t), "agent", "-config="+agentConfig(
		filepath.Join(recipes, "agent.hcl"), filepath.Join(dir, "files"),
		"/etc/vault-agent/credential-process.json.ctmpl", recipe(t, filepath.Join(recipes, "credential-process.json.ctmpl"), dir, "cisco-s3/creds/acme", creds),
		"/etc/logship/cisco-s3.json", rendered))

	// The push agent (push/agent.hcl) runs splunk.sh from its folder.
	pushDir := filepath.Join(dir, "push")
	pushFile := filepath.Join(pushDir, "splunk-key.json")
	pushAgent := start(t, append(addrEnv(v.addr), "SPLUNK_URL="+recorder.URL, "SPLUNK_AWS_ACCOUNT=cisco_s3_e2e",
		"SPLUNK_TOKEN_FILE="+splunkToken), vaultBin(t), "agent", "-config="+agentConfig(
		filepath.Join(recipes, "push", "agent.hcl"), filepath.Join(dir, "push-agent"),
		"/etc/vault-agent/push/key-pair.json.ctmpl", recipe(t, filepath.Join(recipes, "push", "key-pair.json.ctmpl"), dir, "cisco-s3/creds/acme", creds),
		`"/etc/vault-agent/push/splunk.sh"`, fmt.Sprintf("%q", filepath.Join(recipes, "push", "splunk.sh")),
		`destination = "/etc/vault-agent/push/splunk-key.json"`, fmt.Sprintf("destination = %q", pushFile),
		`, "/etc/vault-agent/push/splunk-key.json"]`, fmt.Sprintf(", %q]", pushFile)))

	var shippers []*shipper
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, sh := range shippers {
			l := readListings(t, sh.log)
			t.Logf("%s: %d listings, the last: %v; its output:\n%s", sh.name, len(l), l[max(0, len(l)-3):], tail(sh.p.log.String(), 20))
		}
		t.Logf("the files agent's log:\n%s", tail(filesAgent.log.String(), 30))
		t.Logf("the push agent's log:\n%s", tail(pushAgent.log.String(), 20))
	})
	common := []string{"E2E_S3_ENDPOINT=" + s.url, "E2E_BUCKET=" + bucket, "E2E_PREFIX=" + prefix, "E2E_REGION=" + region,
		"AWS_REGION=" + region, "AWS_EC2_METADATA_DISABLED=true"}
	// fileShipper starts one shipper on the credential_process recipe:
	// the documented AWS config file, its process counted by a wrapper.
	fileShipper := func(sdk string, command ...string) {
		home := filepath.Join(dir, strings.Fields(sdk)[0])
		sh := &shipper{name: sdk, recipe: "credential_process", log: filepath.Join(home, "listings"), runs: filepath.Join(home, "runs")}
		counted := writeFile(t, filepath.Join(home, "credential-process"),
			fmt.Sprintf("#!/bin/sh\ndate +%%s >> %q\nexec %q \"$@\"\n", sh.runs, helper))
		if err := os.Chmod(counted, 0o755); err != nil {
			t.Fatal(err)
		}
		config := recipe(t, filepath.Join(recipes, "aws-config"), home,
			"/usr/local/bin/cisco-s3-credential-process", counted, "/etc/logship/cisco-s3.json", rendered)
		env := append([]string{"HOME=" + home, "AWS_CONFIG_FILE=" + config,
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")}, common...)
		if command == nil {
			env = append(env, "E2E_SHIPPER_LOG="+sh.log)
			command = []string{os.Args[0]}
		} else {
			command = append(command, sh.log)
		}
		sh.p = start(t, env, command[0], command[1:]...)
		shippers = append(shippers, sh)
	}
	waitFor(t, time.Minute, "the agent to render the credential_process file", func() bool {
		b, _ := os.ReadFile(rendered)
		return strings.Contains(string(b), served[0].CurrentKeyID)
	})
	fileShipper("aws-sdk-go-v2")
	fileShipper("botocore", python, filepath.Join(repoRoot(t), "scripts", "e2e", "shippers", "botocore_shipper.py"))
	fileShipper("Ruby SDK", ruby, filepath.Join(repoRoot(t), "scripts", "e2e", "shippers", "ruby_shipper.rb"))

	// Vault Agent as process supervisor of a static-key shipper
	// (supervisor.hcl), with the Go shipper as its child.
	supervised := &shipper{name: "aws-sdk-go-v2, static keys", recipe: "supervisor (exec)", log: filepath.Join(dir, "supervised-listings")}
	supervisorDir := filepath.Join(dir, "supervisor")
	supervisorSource := string(readFile(t, filepath.Join(recipes, "supervisor.hcl")))
	if strings.Count(supervisorSource, "cisco-s3/creds/acme") != 2 {
		t.Fatal("supervisor.hcl should read cisco-s3/creds/acme in its two env_template blocks")
	}
	supervisorConfig := agentConfig(writeFile(t, filepath.Join(dir, "supervisor-source", "supervisor.hcl"),
		strings.ReplaceAll(supervisorSource, "cisco-s3/creds/acme", creds)), supervisorDir,
		`["/usr/local/bin/my-shipper", "--config", "/etc/my-shipper.conf"]`, fmt.Sprintf("[%q]", os.Args[0]))
	supervisor := start(t, append(append(addrEnv(v.addr), "E2E_SHIPPER_LOG="+supervised.log, "HOME="+supervisorDir,
		"AWS_CONFIG_FILE="+filepath.Join(supervisorDir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(supervisorDir, "none")), common...),
		vaultBin(t), "agent", "-config="+supervisorConfig)
	supervised.p = supervisor
	shippers = append(shippers, supervised)

	// recovered waits until every shipper's last three listings started
	// after since and worked.
	recovered := func(what string, since time.Time, limit time.Duration) {
		waitFor(t, limit, what, func() bool {
			for _, sh := range shippers {
				l := readListings(t, sh.log)
				if len(l) < 3 {
					return false
				}
				for _, x := range l[len(l)-3:] {
					if !x.ok || x.start.Before(since) {
						return false
					}
				}
			}
			return true
		})
	}
	recovered("every shipper to list the bucket", time.Time{}, time.Minute)
	steady := time.Now()
	if s.org(t, awsOrg).Rotations != served[0].Rotations {
		t.Fatal("the scheduled rotation came before the shippers were steady: the test needs a longer rotation_period")
	}

	var events []shipperEvent
	// rotated waits for the simulator's next rotation and returns its time.
	rotated := func(what string, limit time.Duration) time.Time {
		want := served[len(served)-1].Rotations + 1
		deadline := time.Now().Add(limit)
		for s.org(t, awsOrg).Rotations < want {
			if time.Now().After(deadline) {
				t.Fatalf("no %s rotation within %s", what, limit)
			}
			time.Sleep(100 * time.Millisecond)
		}
		at := time.Now()
		served = append(served, s.org(t, awsOrg))
		return at
	}

	at := rotated("scheduled", 2*time.Minute)
	v.must(t, "write", mountPrefix+"/config/"+name, "disable_automated_rotation=true")
	events = append(events, shipperEvent{"scheduled", at, at, plannedGoal})
	recovered("every shipper to list after the scheduled rotation", at, plannedGoal+30*time.Second)

	v.must(t, "write", mountPrefix+"/rotate/"+name, "graceful=true")
	at = rotated("graceful", 3*time.Minute)
	events = append(events, shipperEvent{"graceful manual", at, at, plannedGoal})
	recovered("every shipper to list after the graceful rotation", at, plannedGoal+30*time.Second)

	at = time.Now()
	v.must(t, "write", "-f", mountPrefix+"/rotate/"+name)
	rotated("manual", time.Minute)
	events = append(events, shipperEvent{"plain manual", at, at, manualGoal})
	recovered("every shipper to list after the manual rotation", at, manualGoal+30*time.Second)

	// A refresh in Cisco's dashboard that nothing tells Vault of: the key
	// check finds the dead key and the heal rotates.
	at = time.Now()
	s.post(t, "/_sim/refresh", `{"org_id":"`+awsOrg+`"}`)
	healed := rotated("heal", 6*time.Minute)
	events = append(events, shipperEvent{"dashboard refresh, healed", at, healed, healGoal})
	recovered("every shipper to list after the heal", healed, healGoal+30*time.Second)
	time.Sleep(5 * time.Second)
	end := time.Now()

	// Every shipper's listings, against the windows.
	fmt.Printf("shippers: %d s of listings from steady state, events at", int(end.Sub(steady).Seconds()))
	for _, e := range events {
		fmt.Printf(" %s +%d s", e.name, int(e.at.Sub(steady).Seconds()))
	}
	fmt.Println()
	fmt.Printf("%-28s %-20s", "shipper", "recipe")
	for _, e := range events {
		fmt.Printf(" | %-26s", e.name)
	}
	fmt.Printf(" | %s\n", "credential_process runs")
	for _, sh := range shippers {
		listings := readListings(t, sh.log)
		failed := make([]int, len(events))
		last := make([]time.Time, len(events))
		n := 0
		var prev time.Time
		for _, l := range listings {
			if l.start.Before(steady) || l.start.After(end) {
				continue
			}
			n++
			// One listing a second: a longer pause is a listing that hung
			// or a shipper that stopped, which the failures would not show.
			if !prev.IsZero() && l.start.Sub(prev) > 2500*time.Millisecond {
				t.Errorf("%s: no listing for %.1f s after %s", sh.name, l.start.Sub(prev).Seconds(), prev.Format("15:04:05.000"))
			}
			prev = l.start
			if l.ok {
				continue
			}
			// Within a window, only S3's refusal of a dead or not yet
			// accepted key: a credentials error (the process failing,
			// botocore's "still expired") is the recipe's own failure.
			if l.detail != "InvalidAccessKeyId" && l.detail != "SignatureDoesNotMatch" {
				t.Errorf("%s: a listing failed with %s at %s: not S3 refusing a key", sh.name, l.detail, l.start.Format("15:04:05.000"))
			}
			i := sort.Search(len(events), func(i int) bool { return l.end.Before(events[i].at.Add(-time.Second)) }) - 1
			switch {
			case i < 0:
				t.Errorf("%s: a listing failed (%s) %.1f s after steady state, before any key change", sh.name, l.detail, l.end.Sub(steady).Seconds())
			case l.end.After(events[i].from.Add(events[i].goal)):
				t.Errorf("%s: a listing failed (%s) %.1f s after the %s, beyond its goal of %s", sh.name, l.detail,
					l.end.Sub(events[i].from).Seconds(), events[i].name, events[i].goal)
			default:
				failed[i]++
				last[i] = l.end
			}
		}
		fmt.Printf("%-28s %-20s", sh.name, sh.recipe)
		for i, e := range events {
			cell := "no failed listing"
			if failed[i] > 0 {
				cell = fmt.Sprintf("%d failed, until +%.1f s", failed[i], last[i].Sub(e.from).Seconds())
			}
			fmt.Printf(" | %-26s", cell)
			// Cisco kills the old key at once and AWS takes the propagation
			// delay to accept the new one: a shipper that saw no failure at
			// a rotation was not measured.
			if failed[i] < int(propagationDelay/time.Second)-2 {
				t.Errorf("%s: only %d failed listings at the %s; the propagation delay alone fails about %d", sh.name, failed[i], e.name, int(propagationDelay/time.Second))
			}
		}
		if end.Sub(prev) > 2500*time.Millisecond {
			t.Errorf("%s: its last listing started %.1f s before the end", sh.name, end.Sub(prev).Seconds())
		}
		minutes := end.Sub(steady).Minutes()
		if sh.runs == "" {
			// The supervisor started the child once, then once per key.
			starts := strings.Count(sh.p.log.String(), "(child) spawning")
			fmt.Printf(" | none; the child started %d times\n", starts)
			if starts != len(events)+1 {
				t.Errorf("%s: the supervisor started the shipper %d times for %d key changes", sh.name, starts, len(events))
			}
			continue
		}
		runs := countRuns(t, sh.runs, steady, end)
		fmt.Printf(" | %.1f a minute (%.1f listings a minute)\n", float64(runs)/minutes, float64(n)/minutes)
		// Bounded: at most one run per listing (botocore, Ruby), or one per
		// Lifetime (aws-sdk-go-v2), with a margin for the listings' spread;
		// and at least one per 3 s, or the SDK did not refresh.
		if limit := 1.1*float64(n) + 2; float64(runs) > limit {
			t.Errorf("%s: %d credential_process runs for %d listings", sh.name, runs, n)
		}
		if floor := end.Sub(steady).Seconds()/3 - 2; float64(runs) < floor {
			t.Errorf("%s: %d credential_process runs in %.0f s: the SDK does not run it every 3 s", sh.name, runs, end.Sub(steady).Seconds())
		}
	}

	// The push recipe ran once per key, the failed first call again.
	pushMu.Lock()
	defer pushMu.Unlock()
	var ok []pushCall
	for i, c := range pushes {
		if c.auth != "Bearer e2e-splunk-token" || c.category != "1" {
			t.Errorf("push %d: auth %q, category %q", i+1, c.auth, c.category)
		}
		if c.status == http.StatusOK {
			ok = append(ok, c)
		}
	}
	if len(pushes) == 0 || pushes[0].status != http.StatusServiceUnavailable {
		t.Fatalf("the push endpoint saw %d calls", len(pushes))
	}
	if len(ok) != len(served) {
		t.Errorf("%d successful pushes (%d calls) for %d keys", len(ok), len(pushes), len(served))
	}
	for i := 0; i < len(ok) && i < len(served); i++ {
		if ok[i].keyID != served[i].CurrentKeyID || ok[i].secret != served[i].SecretAccessKey {
			t.Errorf("push %d carried key %s, want %s (and its secret)", i+1, ok[i].keyID, served[i].CurrentKeyID)
		}
	}
	if pushes[0].keyID != served[0].CurrentKeyID {
		t.Errorf("the failed first push carried %s, want %s", pushes[0].keyID, served[0].CurrentKeyID)
	}
	fmt.Printf("push recipe (splunk.sh): %d calls, %d successful, for %d keys; the first call failed and was made again\n",
		len(pushes), len(ok), len(served))
}

// tail is the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// agentPreamble is an agent configuration's Vault address and token
// auto-auth, with the token in dir.
func agentPreamble(t *testing.T, v *vault, dir string) string {
	t.Helper()
	token := writeFile(t, filepath.Join(dir, "token"), v.token)
	return fmt.Sprintf("vault { address = %q }\nauto_auth {\n  method \"token_file\" {\n    config = { token_file_path = %q }\n  }\n}\n", v.addr, token)
}

// recipe copies a file of deploy/vault-agent/ into dir with each pair of
// (old, new) replaced exactly once, and returns the copy's path.
func recipe(t *testing.T, path, dir string, pairs ...string) string {
	t.Helper()
	text := string(readFile(t, path))
	for i := 0; i+1 < len(pairs); i += 2 {
		text = replaceOnce(t, text, pairs[i], pairs[i+1])
	}
	return writeFile(t, filepath.Join(dir, filepath.Base(path)), text)
}

// replaceOnce replaces old, which must occur once, so that a recipe that
// changes shape fails here rather than going untested.
func replaceOnce(t *testing.T, text, old, new string) string {
	t.Helper()
	if n := strings.Count(text, old); n != 1 {
		t.Fatalf("the recipe holds %q %d times, want once:\n%s", old, n, text)
	}
	return strings.Replace(text, old, new, 1)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (l shipperListing) String() string {
	result := "fail " + l.detail
	if l.ok {
		result = "ok"
	}
	return fmt.Sprintf("%s %s", l.start.Format("15:04:05.000"), result)
}

// shipperListing is one line of a shipper's log.
type shipperListing struct {
	start, end time.Time
	ok         bool
	detail     string
}

// readListings parses a shipper's log; a line being written is skipped.
func readListings(t *testing.T, path string) []shipperListing {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []shipperListing
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) != 4 {
			continue
		}
		start, err1 := strconv.ParseInt(fields[0], 10, 64)
		end, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, shipperListing{time.UnixMilli(start), time.UnixMilli(end), fields[2] == "ok", fields[3]})
	}
	return out
}

// countRuns counts the credential_process runs that the wrapper logged
// (one Unix time a line) within [from, to].
func countRuns(t *testing.T, path string, from, to time.Time) int {
	t.Helper()
	n := 0
	for _, line := range strings.Fields(string(readFile(t, path))) {
		if sec, err := strconv.ParseInt(line, 10, 64); err == nil && sec >= from.Unix() && sec <= to.Unix() {
			n++
		}
	}
	return n
}

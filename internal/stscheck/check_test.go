package stscheck

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

const testOrgID = "1234567"

// simEnv is a simulator that plays AWS STS for its organization's key.
type simEnv struct {
	sim *ciscosim.Server
	srv *httptest.Server
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	sim := ciscosim.New(ciscosim.Config{Orgs: []ciscosim.Org{{ID: testOrgID}}, NoRateLimits: true})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &simEnv{sim: sim, srv: srv}
}

func (e *simEnv) org() ciscosim.OrgState { return e.sim.State().Orgs[testOrgID] }

// checkSimKey checks a key against the simulator with c.
func (e *simEnv) checkSimKey(c *Checker, id, secret string) Result {
	return c.Check(context.Background(), e.srv.URL, "us-east-1", id, secret)
}

// mistype changes the last character of a secret.
func mistype(secret string) string {
	last := "A"
	if strings.HasSuffix(secret, "A") {
		last = "B"
	}
	return secret[:len(secret)-1] + last
}

func TestKeyCheck_ClassifiesSTSAnswers(t *testing.T) {
	env := newSimEnv(t)
	checker := New()
	org := env.org()
	assertNoSecret := func(r Result) {
		t.Helper()
		if strings.Contains(r.String(), org.SecretAccessKey) {
			t.Fatal("a check result quotes the secret")
		}
	}

	r := env.checkSimKey(checker, org.CurrentKeyID, org.SecretAccessKey)
	if r.Outcome != Valid || r.Account != org.AccountID || r.ARN != org.ARN {
		t.Fatalf("current key: %+v, want valid with account %s and %s", r, org.AccountID, org.ARN)
	}
	// The same checker, the same key id, another secret: a signer that
	// cached the first signing key would pass it.
	wrong := mistype(org.SecretAccessKey)
	if r := env.checkSimKey(checker, org.CurrentKeyID, wrong); r.Outcome != Invalid || r.Half != HalfSecret || r.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %+v", r)
	}
	if r := env.checkSimKey(checker, "AKIANOTAKEYOFANYORG1", org.SecretAccessKey); r.Outcome != Invalid || r.Half != HalfID {
		t.Fatalf("unknown key id: %+v", r)
	}
	for _, kind := range []string{"sts_5xx", "sts_throttling", "sts_drop"} {
		env.sim.InjectFault(ciscosim.Fault{Kind: kind})
		r := env.checkSimKey(checker, org.CurrentKeyID, org.SecretAccessKey)
		if r.Outcome != Unknown {
			t.Fatalf("%s: %+v, want unknown", kind, r)
		}
		assertNoSecret(r)
	}
	// Not an STS endpoint at all: says nothing about the key.
	if r := checker.Check(context.Background(), env.srv.URL+"/admin/v2", "", org.CurrentKeyID, org.SecretAccessKey); r.Outcome != Unknown {
		t.Fatalf("a non-STS endpoint: %+v", r)
	}
	assertNoSecret(r)
}

func TestKeyCheck_DeadlineAndBodyCap(t *testing.T) {
	env := newSimEnv(t)
	org := env.org()
	env.sim.InjectFault(ciscosim.Fault{Kind: "sts_delay", DelayMS: 2000})
	short := New(WithTimeout(200 * time.Millisecond))
	start := time.Now()
	if r := short.Check(context.Background(), env.srv.URL, "", org.CurrentKeyID, org.SecretAccessKey); r.Outcome != Unknown {
		t.Fatalf("a check past its deadline: %+v", r)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("the check took %s, past its 200 ms deadline", d)
	}

	// An endless 200 body: the check reads at most the cap and says unknown.
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("<a>", 1024))
		for i := 0; i < 1<<14; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	if r := short.Check(context.Background(), endless.URL, "", org.CurrentKeyID, org.SecretAccessKey); r.Outcome != Unknown {
		t.Fatalf("an endless body: %+v", r)
	}
}

func TestEndpoint(t *testing.T) {
	cases := []struct{ override, region, want string }{
		{"", "", "https://sts.amazonaws.com"},
		{"", "eu-central-1", "https://sts.eu-central-1.amazonaws.com"},
		{"https://sts.example.internal", "eu-central-1", "https://sts.example.internal"},
	}
	for _, tc := range cases {
		if got := Endpoint(tc.override, tc.region); got != tc.want {
			t.Fatalf("endpoint for override %q, region %q: %s, want %s", tc.override, tc.region, got, tc.want)
		}
	}
}

// skewedClock sends requests signed 20 minutes in the past, as a host with
// a wrong clock does.
type skewedClock struct{}

func (skewedClock) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Amz-Date", time.Now().UTC().Add(-20*time.Minute).Format("20060102T150405Z"))
	return http.DefaultTransport.RoundTrip(r)
}

// AWS answers SignatureDoesNotMatch for a skewed clock and a wrong region
// scope too; neither says the secret is wrong.
func TestKeyCheck_SignatureRefusedForAnotherCauseIsUnknown(t *testing.T) {
	env := newSimEnv(t)
	org := env.org()
	r := env.checkSimKey(New(WithTransport(skewedClock{})), org.CurrentKeyID, org.SecretAccessKey)
	if r.Outcome != Unknown || r.Half != "" || !strings.Contains(r.Reason, "Signature expired") || !strings.Contains(r.Reason, "clock") {
		t.Fatalf("a skewed clock: %+v, want unknown naming the clock", r)
	}

	region := `<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>` +
		`<Message>Credential should be scoped to a valid region. </Message></Error></ErrorResponse>`
	if r := classifySTSAnswer(http.StatusForbidden, []byte(region)); r.Outcome != Unknown {
		t.Fatalf("a wrong region scope: %+v, want unknown", r)
	}
}

// A check that its caller cut short says nothing of STS: it does not make
// the recoveries skip their checks.
func TestKeyCheck_CallerThatLeavesDoesNotSilenceSTS(t *testing.T) {
	env := newSimEnv(t)
	checker := New()
	org := env.org()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checker.Check(ctx, env.srv.URL, "", org.CurrentKeyID, org.SecretAccessKey)
	if checker.Silent(env.srv.URL) {
		t.Fatal("a check its caller cancelled marked STS silent")
	}
	env.sim.InjectFault(ciscosim.Fault{Kind: "sts_drop"})
	checker.Check(context.Background(), env.srv.URL, "", org.CurrentKeyID, org.SecretAccessKey)
	if !checker.Silent(env.srv.URL) {
		t.Fatal("a dropped connection did not mark STS silent")
	}
	checker.Check(context.Background(), env.srv.URL, "", org.CurrentKeyID, org.SecretAccessKey)
	if checker.Silent(env.srv.URL) {
		t.Fatal("an answer did not clear the mark")
	}
}

// TestOutcomeValues: the outcomes are stored as these strings.
func TestOutcomeValues(t *testing.T) {
	for o, want := range map[Outcome]string{Valid: "valid", Invalid: "invalid", Unknown: "unknown"} {
		if string(o) != want {
			t.Fatalf("outcome %q, want %q", o, want)
		}
	}
}

// TestRatePerEndpoint: the checks sent to one endpoint keep to its rate,
// whatever the number of callers; another endpoint has its own.
func TestRatePerEndpoint(t *testing.T) {
	var mu sync.Mutex
	calls := map[string][]time.Time{}
	stub := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls[name] = append(calls[name], time.Now())
			mu.Unlock()
			http.Error(w, "", http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := stub("a"), stub("b")
	c := New(WithRate(20))
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 30; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c.Check(context.Background(), a.URL, "", "AKIAEXAMPLEEXAMPLE", "secretsecretsecret")
		}()
		go func() {
			defer wg.Done()
			c.Check(context.Background(), b.URL, "", "AKIAEXAMPLEEXAMPLE", "secretsecretsecret")
		}()
	}
	wg.Wait()
	took := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if len(calls["a"]) != 30 || len(calls["b"]) != 30 {
		t.Fatalf("calls a=%d b=%d, want 30 each", len(calls["a"]), len(calls["b"]))
	}
	// 30 calls at 20/s with a burst of 20 take at least half a second; the
	// two endpoints do not share one budget, or it would take 2 s.
	if took < 400*time.Millisecond || took > 1800*time.Millisecond {
		t.Fatalf("60 checks on two endpoints at 20/s each took %v, want about 0.5 s", took)
	}
}

// TestRateWaitEndsWithTheCaller: a check waiting for its endpoint's rate
// gives up with its caller, unsent, as unknown.
func TestRateWaitEndsWithTheCaller(t *testing.T) {
	var sent atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		http.Error(w, "", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c := New(WithRate(1))
	c.Check(context.Background(), srv.URL, "", "AKIAEXAMPLEEXAMPLE", "secretsecretsecret") // spends the burst
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := c.Check(ctx, srv.URL, "", "AKIAEXAMPLEEXAMPLE", "secretsecretsecret")
	if r.Outcome != Unknown || !strings.Contains(r.Reason, "not sent") {
		t.Fatalf("result %+v, want unknown and not sent", r)
	}
	if n := sent.Load(); n != 1 {
		t.Fatalf("%d calls reached the endpoint, want 1", n)
	}
}

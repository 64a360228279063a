package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

const (
	testClientID     = "test-client"
	testClientSecret = "test-client-secret-Zq8vW3"
	testOrgID        = "1234567"
)

// testEnv is a backend wired to a simulator over real HTTP, with a fake
// clock, a storage that can fail, and captured logs and events.
type testEnv struct {
	t       *testing.T
	b       *backend
	storage *testStorage
	sim     *ciscosim.Server
	srv     *httptest.Server
	clock   *fakeClock
	logs    *syncBuffer
	events  *logical.MockEventSender
	system  *logical.StaticSystemView
	lazy    bool
}

type envOption func(*envSettings)

type envSettings struct {
	sim     ciscosim.Config
	storage *testStorage
	system  *logical.StaticSystemView
	clock   *fakeClock
	// lazy skips Initialize, as on a node whose first request comes
	// before the mount loaded.
	lazy bool
}

func withSimConfig(c ciscosim.Config) envOption {
	return func(s *envSettings) { s.sim = c }
}

// withStorage reuses the storage of another env, as a restarted Vault would.
func withStorage(st *testStorage) envOption { return func(s *envSettings) { s.storage = st } }

func withClock(c *fakeClock) envOption { return func(s *envSettings) { s.clock = c } }

// withoutInitialize boots the backend without Vault's initialize call, so
// that the first request or tick loads the mount.
func withoutInitialize() envOption { return func(s *envSettings) { s.lazy = true } }

func newTestEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	set := envSettings{
		sim: ciscosim.Config{
			APIKeys:      []ciscosim.APIKey{{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}}},
			NoRateLimits: true,
		},
		system: &logical.StaticSystemView{
			DefaultLeaseTTLVal: time.Hour,
			MaxLeaseTTLVal:     24 * time.Hour,
		},
	}
	for _, o := range opts {
		o(&set)
	}
	if set.storage == nil {
		set.storage = newTestStorage()
	}
	if set.clock == nil {
		set.clock = newFakeClock(time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
	}
	if set.sim.Now == nil {
		set.sim.Now = set.clock.Now
	}
	sim := ciscosim.New(set.sim)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)

	env := &testEnv{t: t, storage: set.storage, sim: sim, srv: srv, clock: set.clock, logs: &syncBuffer{}, system: set.system,
		events: &logical.MockEventSender{}, lazy: set.lazy}
	if err := env.boot(set.storage); err != nil {
		t.Fatal(err)
	}
	return env
}

// boot starts a backend on storage, as Vault does when it mounts the
// plugin or restarts; the previous backend, if any, is left as it is. It
// shares the env's clock, logs, events and system view.
func (e *testEnv) boot(storage logical.Storage) error {
	conf := &logical.BackendConfig{
		Logger: hclog.New(&hclog.LoggerOptions{
			Level:      hclog.Trace,
			Output:     e.logs,
			JSONFormat: true,
		}),
		System:       e.system,
		StorageView:  storage,
		EventsSender: e.events,
	}
	b := newBackend(conf)
	b.now = e.clock.Now
	// Key checks reach only the simulator: a config without sts_url gets
	// "unknown" at once instead of a wait on AWS. The simulator needs no
	// rate per endpoint (stscheck's tests cover it), and the sequence
	// test's histories would wait on it.
	b.checker = stscheck.New(stscheck.WithTransport(loopbackOnly{}), stscheck.WithRate(0))
	b.probes.firstWait, b.probes.window = 20*time.Millisecond, 5*time.Second
	if err := b.Setup(context.Background(), conf); err != nil {
		return err
	}
	e.b = b
	e.t.Cleanup(func() { b.Cleanup(context.Background()) })
	if e.lazy {
		return nil
	}
	if err := b.Initialize(context.Background(), &logical.InitializationRequest{Storage: storage}); err != nil {
		return err
	}
	// Initialize loads in the background; tests start from a loaded mount
	// (or see why it could not load).
	return b.ensureLoaded(context.Background(), storage)
}

// testMount is the mount point of the env's requests.
const testMount = "cisco-s3/"

// request runs one request the way Vault's router does, including the
// existence check that turns a write into create or update, and its ERROR
// log of an existence check's error.
func (e *testEnv) request(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	e.t.Helper()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage, MountPoint: testMount}
	if op == logical.UpdateOperation {
		checkFound, exists, err := e.b.HandleExistenceCheck(context.Background(), req)
		if err != nil {
			if !errors.Is(err, logical.ErrUnsupportedPath) {
				e.vaultCore().Error("failed to run existence check", "error", err)
			}
			return nil, err
		}
		if checkFound && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return asHTTP(e.b.HandleRequest(context.Background(), req))
}

// asHTTP turns an answer with an HTTP error status of its own (errorStatus)
// into the coded error a client sees, with the body's message.
func asHTTP(resp *logical.Response, err error) (*logical.Response, error) {
	if err != nil || resp == nil {
		return resp, err
	}
	code, ok := resp.Data[logical.HTTPStatusCode].(int)
	if !ok || code < 400 {
		return resp, err
	}
	var body struct{ Errors []string }
	raw, _ := resp.Data[logical.HTTPRawBody].([]byte)
	if json.Unmarshal(raw, &body) != nil || len(body.Errors) != 1 {
		return nil, fmt.Errorf("an error answer whose body is not {\"errors\": [one message]}: %s", raw)
	}
	return nil, logical.CodedError(code, body.Errors[0])
}

// vaultCore logs into the env's logs as Vault's core does.
func (e *testEnv) vaultCore() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "core", Level: hclog.Trace, Output: e.logs, JSONFormat: true})
}

// assertNoErrorLogged fails the test if anything logged at ERROR.
func (e *testEnv) assertNoErrorLogged() {
	e.t.Helper()
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"@level":"error"`) {
			e.t.Fatalf("logged at ERROR: %s", line)
		}
	}
}

func (e *testEnv) write(path string, data map[string]interface{}) (*logical.Response, error) {
	e.t.Helper()
	return e.request(logical.UpdateOperation, path, data)
}

func (e *testEnv) read(path string) (*logical.Response, error) {
	e.t.Helper()
	return e.request(logical.ReadOperation, path, nil)
}

// mustOK fails the test on an error or an error response.
func mustOK(t *testing.T, resp *logical.Response, err error) *logical.Response {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if resp != nil && resp.IsError() {
		t.Fatalf("unexpected error response: %v", resp.Error())
	}
	return resp
}

// mustBadRequest asserts a 400 whose message contains want: an error
// response, alone or with logical.ErrInvalidRequest, which Vault answers
// with the response's message and status 400.
func mustBadRequest(t *testing.T, resp *logical.Response, err error, want string) {
	t.Helper()
	if err != nil && !errors.Is(err, logical.ErrInvalidRequest) {
		t.Fatalf("want a 400 containing %q, got a Go error: %v", want, err)
	}
	if resp == nil || !resp.IsError() {
		t.Fatalf("want a 400 containing %q, got %#v", want, resp)
	}
	if !strings.Contains(resp.Error().Error(), want) {
		t.Fatalf("400 message %q does not contain %q", resp.Error(), want)
	}
}

// configure writes a config pointing at the simulator.
func (e *testEnv) configure(name string, extra map[string]interface{}) {
	e.t.Helper()
	data := map[string]interface{}{
		"provider":      "umbrella",
		"client_id":     testClientID,
		"client_secret": testClientSecret,
		"api_url":       e.srv.URL + "/admin/v2",
		"token_url":     e.srv.URL + "/auth/v2/token",
		"sts_url":       e.srv.URL,
	}
	for k, v := range extra {
		data[k] = v
	}
	e.mustWrite("config/"+name, data)
}

func (e *testEnv) rotate(name string) (*logical.Response, error) {
	e.t.Helper()
	return e.write("rotate/"+name, nil)
}

// tick fires the periodic function the way Vault does.
func (e *testEnv) tick() {
	e.t.Helper()
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Path: "", Storage: e.storage})
	if err != nil && !errors.Is(err, logical.ErrUnsupportedPath) {
		e.t.Fatalf("periodic: %v", err)
	}
}

// waitSimIdle waits until the simulator handles no rotateKey call.
func (e *testEnv) waitSimIdle() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.sim.State().InFlight > 0 {
		if time.Now().After(deadline) {
			e.t.Fatal("the simulator is still handling a call after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// simOrg returns the simulator's view of the test organization.
func (e *testEnv) simOrg() ciscosim.OrgState {
	return e.sim.State().Orgs[testOrgID]
}

// assertServesSimKey checks the invariant: creds holds the simulator's
// current key.
func (e *testEnv) assertServesSimKey(name string) *logical.Response {
	e.t.Helper()
	resp := e.mustRead("creds/" + name)
	org := e.simOrg()
	if resp.Data["access_key_id"] != org.CurrentKeyID || resp.Data["secret_access_key"] != org.SecretAccessKey {
		e.t.Fatalf("served key %v is not the simulator's current key %s", resp.Data["access_key_id"], org.CurrentKeyID)
	}
	return resp
}

// assertNoSecretsLogged checks that no secret reached the logs.
func (e *testEnv) assertNoSecretsLogged(extra ...string) {
	e.t.Helper()
	logs := e.logs.String()
	secrets := append([]string{testClientSecret}, extra...)
	if org := e.simOrg(); org.SecretAccessKey != "" {
		secrets = append(secrets, org.SecretAccessKey)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			e.t.Fatalf("a secret appeared in the logs")
		}
	}
}

// loopbackOnly is a transport that refuses every host but the loopback.
type loopbackOnly struct{}

func (loopbackOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("test transport: %s is not a loopback host", req.URL.Host)
	}
	return http.DefaultTransport.RoundTrip(req)
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testStorage is in-memory storage that counts reads and can fail writes.
type testStorage struct {
	logical.Storage
	gets, lists atomic.Int64
	mu          sync.Mutex
	// failPut, failDelete and failGet decide whether a Put, Delete or Get
	// fails; nil means never.
	failPut, failDelete, failGet func(key string) bool
	// failedPuts receives every entry whose Put failed, if set.
	failedPuts func(*logical.StorageEntry)
}

func newTestStorage() *testStorage {
	return &testStorage{Storage: &logical.InmemStorage{}}
}

// errInjectedPut is every injected storage failure.
var errInjectedPut = errors.New("injected storage failure")

func (s *testStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.gets.Add(1)
	s.mu.Lock()
	fail := s.failGet
	s.mu.Unlock()
	if fail != nil && fail(key) {
		return nil, errInjectedPut
	}
	return s.Storage.Get(ctx, key)
}

func (s *testStorage) List(ctx context.Context, prefix string) ([]string, error) {
	s.lists.Add(1)
	return s.Storage.List(ctx, prefix)
}

func (s *testStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	s.mu.Lock()
	fail, failed := s.failPut, s.failedPuts
	s.mu.Unlock()
	if fail != nil && fail(entry.Key) {
		if failed != nil {
			failed(entry)
		}
		return errInjectedPut
	}
	return s.Storage.Put(ctx, entry)
}

func (s *testStorage) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	fail := s.failDelete
	s.mu.Unlock()
	if fail != nil && fail(key) {
		return errInjectedPut
	}
	return s.Storage.Delete(ctx, key)
}

func (s *testStorage) setFailDelete(f func(key string) bool) {
	s.mu.Lock()
	s.failDelete = f
	s.mu.Unlock()
}

func (s *testStorage) setFailPut(f func(key string) bool) {
	s.mu.Lock()
	s.failPut = f
	s.mu.Unlock()
}

// failKeyPuts fails the next n writes of stored keys (n < 0: always).
func failKeyPuts(n int) func(string) bool { return failUnder(keyPrefix, n) }

// failUnder fails the next n calls on keys under prefix (n < 0: always).
func failUnder(prefix string, n int) func(string) bool {
	var mu sync.Mutex
	return func(key string) bool {
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if n == 0 {
			return false
		}
		if n > 0 {
			n--
		}
		return true
	}
}

// queued reports whether name is in the rotation queue.
func (s *scheduler) queued(name string) bool {
	_, ok := s.queuedAt(name)
	return ok
}

// queuedAt is when name is queued.
func (s *scheduler) queuedAt(name string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.queue.items[name]
	if !ok {
		return time.Time{}, false
	}
	return it.at, true
}

// earliest is the first queued time.
func (s *scheduler) earliest() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue.heap) == 0 {
		return time.Time{}, false
	}
	return s.queue.heap[0].at, true
}

func (s *scheduler) queueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue.items)
}

// jsonRoundTrip renders data as Vault's HTTP layer would.
func jsonRoundTrip(t *testing.T, data map[string]interface{}) map[string]json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// injectFault queues a fault for the simulator's next rotateKey calls.
func (e *testEnv) injectFault(f ciscosim.Fault) {
	e.sim.InjectFault(f)
}

func (e *testEnv) mustWrite(path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, err := e.write(path, data)
	return mustOK(e.t, resp, err)
}

func (e *testEnv) mustRead(path string) *logical.Response {
	e.t.Helper()
	resp, err := e.read(path)
	return mustOK(e.t, resp, err)
}

func (e *testEnv) mustRotate(name string) *logical.Response {
	e.t.Helper()
	resp, err := e.rotate(name)
	return mustOK(e.t, resp, err)
}

func (e *testEnv) mustRequest(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, err := e.request(op, path, data)
	return mustOK(e.t, resp, err)
}

// seedOrganizations stores n organizations with fresh keys, none due.
func seedOrganizations(tb testing.TB, s logical.Storage, n int, now time.Time) {
	tb.Helper()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("org-%05d", i)
		cfg := &orgConfig{Provider: providerUmbrella, ClientID: fmt.Sprintf("client-%05d", i), ClientSecret: "secret", RotationPeriod: defaultRotationPeriod}
		key := map[string]interface{}{"access_key_id": fmt.Sprintf("AKIA%016d", i), "secret_access_key": strings.Repeat("k", 40),
			"key_creation_date": now, "last_vault_rotation": now, "version": 1}
		if err := seedJSON(context.Background(), s, configPrefix+name, cfg); err != nil {
			tb.Fatal(err)
		}
		if err := seedJSON(context.Background(), s, keyPrefix+name, key); err != nil {
			tb.Fatal(err)
		}
	}
}

var t0ctx = context.Background()

// waitKey waits until the stored key satisfies ok, or fails after 10 s.
func (e *testEnv) waitKey(name string, ok func(k *keyState) bool) *keyState {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		k, err := getKey(t0ctx, e.storage, name)
		if err != nil {
			e.t.Fatal(err)
		}
		if k != nil && ok(k) {
			return k
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the key never reached the awaited state: %v", k)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustConfig is name's cached config; it fails when name is not cached.
func mustConfig(env *testEnv, name string) *orgConfig {
	e, _ := env.b.cached(name)
	if e == nil {
		env.t.Fatalf("%s is not cached", name)
	}
	return e.config
}

// hasEvent reports whether env sent an event of eventType whose field
// contains value.
func hasEvent(env *testEnv, eventType, field, value string) bool {
	for _, ev := range env.events.Events {
		if string(ev.Type) == eventType && strings.Contains(ev.Event.Metadata.Fields[field].GetStringValue(), value) {
			return true
		}
	}
	return false
}

// scrape reads metrics the way Prometheus would and parses the text.
func (e *testEnv) scrape() (map[string]*dto.MetricFamily, string) {
	e.t.Helper()
	resp := e.mustRead("metrics")
	if ct := resp.Data[logical.HTTPContentType]; ct != "text/plain; version=0.0.4; charset=utf-8" {
		e.t.Fatalf("content type %v", ct)
	}
	body := resp.Data[logical.HTTPRawBody].([]byte)
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("not Prometheus text: %v\n%s", err, body)
	}
	return families, string(body)
}

// sample returns the value of the family's series whose labels match, and
// whether there is one.
func sample(families map[string]*dto.MetricFamily, family string, labels map[string]string) (float64, bool) {
	f := families[family]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// crashAfterCiscoRotated leaves what a crash between Cisco's reply and the
// storage write leaves: the WAL entry of a rotation from version is
// stored, Cisco rotated, and the reply died with the process.
func (e *testEnv) crashAfterCiscoRotated(name string, version int) {
	e.t.Helper()
	if _, err := framework.PutWAL(e.t.Context(), e.storage, walKindRotate, &rotationWAL{Name: name, Version: version, Started: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	cfg, _ := getConfig(e.t.Context(), e.storage, name)
	if _, err := cisco.NewClient(cfg.settings()).RotateKey(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
}

// sibling is a second env on the same storage, simulator, clock, logs and
// events, whose backend the caller boots, as a restarted Vault would.
func (e *testEnv) sibling() *testEnv {
	return &testEnv{t: e.t, storage: e.storage, sim: e.sim, srv: e.srv, clock: e.clock, logs: e.logs, system: e.system, events: e.events}
}

// mistype changes the last character of a secret.
func mistype(secret string) string {
	last := "A"
	if strings.HasSuffix(secret, "A") {
		last = "B"
	}
	return secret[:len(secret)-1] + last
}

// failWithoutCisco fails a rotation of acme with an outcome the plugin
// cannot know and Cisco did not act on: the key is stale and works.
func (e *testEnv) failWithoutCisco() {
	e.t.Helper()
	e.injectFault(ciscosim.Fault{Kind: "5xx"})
	if _, err := e.rotate("acme"); err == nil {
		e.t.Fatal("the rotation should have failed")
	}
}

// loseRotatedKey has Cisco rotate acme's key and the plugin fail to store
// the new one: Cisco certainly replaced the served key.
func (e *testEnv) loseRotatedKey() {
	e.t.Helper()
	e.storage.setFailPut(failKeyPuts(storeAttempts)) // the new key's writes fail, the stale mark's work
	if _, err := e.rotate("acme"); err == nil {
		e.t.Fatal("a lost key reported success")
	}
	e.storage.setFailPut(nil)
}

// assertTickRotatesOnce ticks after d and asserts that Cisco rotated acme
// once and that it serves Cisco's current key.
func (e *testEnv) assertTickRotatesOnce(d time.Duration) {
	e.t.Helper()
	before := e.simOrg().Rotations
	e.clock.Advance(d)
	e.tick()
	if got := e.simOrg().Rotations; got != before+1 {
		e.t.Fatalf("Cisco rotations %d→%d, want one recovery", before, got)
	}
	e.assertServesSimKey("acme")
}

// acceptingSTS is an STS that accepts every key, as AWS does for a while
// with a key that Cisco has just replaced.
func acceptingSTS(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/logs</Arn>`+
			`<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// liftWorkingStaleKey marks acme's working key stale and lets a recovery
// lift the mark.
func (e *testEnv) liftWorkingStaleKey() {
	e.t.Helper()
	e.failWithoutCisco()
	e.clock.Advance(2 * time.Hour)
	e.tick()
	if k, _ := getKey(t0ctx, e.storage, "acme"); k.Stale() || k.RecheckFrom().IsZero() {
		e.t.Fatalf("the working key was not lifted: %v", k)
	}
}

// newLiftedEnv is a test env whose organization acme, rotated every 30
// days, serves a working key whose stale mark a recovery lifted. It has no
// routine checks, so that every check it makes is a re-check.
func newLiftedEnv(t *testing.T) *testEnv {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "30d", "key_check_interval": 0})
	env.mustRotate("acme")
	env.liftWorkingStaleKey()
	return env
}

// awaitRemark lets d pass, ticks, and waits for the re-check that tick
// starts to be rejected; then lets the confirmation's minute pass, ticks,
// and waits for the confirming re-check to mark acme's key stale again.
func (e *testEnv) awaitRemark(d time.Duration) *keyState {
	e.t.Helper()
	e.clock.Advance(d)
	e.tick()
	e.waitKey("acme", func(k *keyState) bool { return k.Stale() || !k.RejectedAt().IsZero() })
	e.clock.Advance(bucketkey.RejectionConfirmAfter)
	e.tick()
	k := e.waitKey("acme", func(k *keyState) bool { return k.Stale() })
	// The re-mark says why in its event: a rotation attempt of the same
	// tick may have replaced the key's last error since.
	if !hasEvent(e, bucketkey.NoticeRotateFail, "error", "Cisco replaced it after all") || k.CheckResult() != stscheck.Invalid {
		e.t.Fatalf("re-marked key: error %q, check %s, no rotate-fail event of the re-mark", k.LastError(), k.CheckResult())
	}
	return k
}

// configureOwnOrg writes a config for name on a Cisco organization of its
// own, behind an API key of its own: two names on one organization would
// rotate each other's key out, and a config write refuses them.
func (e *testEnv) configureOwnOrg(name string, extra map[string]interface{}) {
	e.t.Helper()
	h := fnv.New32a()
	h.Write([]byte(name))
	orgID := fmt.Sprintf("%d", 2000000+h.Sum32()%1000000)
	clientID := "client-" + name
	e.sim.AddAPIKey(ciscosim.APIKey{ClientID: clientID, ClientSecret: testClientSecret, OrgIDs: []string{orgID}})
	data := map[string]interface{}{"client_id": clientID, "org_id": orgID}
	for k, v := range extra {
		data[k] = v
	}
	e.configure(name, data)
}

// seedJSON writes v as JSON under storage key, as a test sets up storage
// without the backend; the backend itself writes only through lockedOrg.
func seedJSON(ctx context.Context, s logical.Storage, key string, v interface{}) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

// vault path-help on the mount lists every path the backend serves, each
// as its pattern's literal start (config/<name> and the config/ list both
// start with config/), and rotate's graceful=true.
func TestHelp_RootListsEveryPath(t *testing.T) {
	env := newTestEnv(t)
	env.system.PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "1.21.0"}
	resp, err := env.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: "", Storage: env.storage})
	if err != nil {
		t.Fatal(err)
	}
	help := resp.Data["help"].(string)
	if strings.Contains(env.logs.String(), "error generating OpenAPI") {
		t.Fatalf("the OpenAPI document failed: %s", env.logs)
	}
	var listed int
	for _, p := range env.b.Paths {
		literal := strings.TrimPrefix(p.Pattern, "^")
		if i := strings.IndexAny(literal, "(?$"); i >= 0 {
			literal = literal[:i]
		}
		entry := "\n  " + strings.TrimSuffix(literal, "/")
		if strings.HasSuffix(p.Pattern, "(?P<name>.+)$") {
			entry = "\n  " + literal + "<name> "
		}
		if !strings.Contains(backendHelp, entry) {
			t.Errorf("the mount's help does not list %q (pattern %s)", strings.TrimSpace(entry), p.Pattern)
		}
		listed++
	}
	for _, want := range []string{"\n  config/ ", "graceful=true", nameRule} {
		if !strings.Contains(help, want) {
			t.Errorf("the mount's help does not say %q", strings.TrimSpace(want))
		}
	}
	if listed != 8 {
		t.Fatalf("%d paths, want 8", listed)
	}
}

// The creds help states the re-read bound that credsRereadInterval makes.
func TestHelp_CredsStatesTheRereadBound(t *testing.T) {
	bound := int((credsRereadInterval + time.Second) / time.Second)
	for _, want := range []string{fmt.Sprintf("at most %d", int(credsRereadInterval/time.Second)),
		fmt.Sprintf("re-read at ttl + 1 s, within %d s of any key change", bound)} {
		if !strings.Contains(strings.Join(strings.Fields(pathCredsHelpDesc), " "), want) {
			t.Errorf("the creds help does not say %q", want)
		}
	}
}

// storedKey is the key record that storage holding these JSON fields
// reads as.
func storedKey(t testing.TB, stored map[string]interface{}) *keyState {
	t.Helper()
	raw, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	var k keyState
	if err := json.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	return &k
}

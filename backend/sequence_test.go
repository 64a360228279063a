package backend

// The randomized, model-based sequence test: random histories of requests,
// ticks, config changes, imports, deletes, Cisco faults, storage faults and
// crashes, with the promises checked after every step (sequence_check_test.go).
//
//   go test ./backend -run TestSequence                      # 1,000 histories
//   go test ./backend -run TestSequence -sequence.seed=N     # replay one
//   make soak                                                # 100,000

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

var (
	sequenceHistories = flag.Int("sequence.histories", 1000, "random histories TestSequence runs")
	sequenceSteps     = flag.Int("sequence.steps", 30, "steps per history")
	sequenceSeed      = flag.Uint64("sequence.seed", 0, "replay the history of this seed only")
)

func TestSequence(t *testing.T) {
	if *sequenceSeed != 0 {
		runHistory(t, *sequenceSeed)
		return
	}
	base := rand.Uint64() >> 1
	t.Logf("first seed %d; replay one with -sequence.seed=N", base)
	// Printed, not logged, so that make soak shows it when every history
	// passes: the counts show that the checks had something to check.
	t.Cleanup(func() { fmt.Printf("sequence test covered: %s\n", sequenceCoverage.String()) })
	// Batches bound the memory: the testing package keeps every finished
	// parallel subtest until its parent ends, about 280 KB per history.
	const batch = 500
	for first := 0; first < *sequenceHistories; first += batch {
		t.Run(fmt.Sprintf("histories-%d", first), func(t *testing.T) {
			for i := first; i < min(first+batch, *sequenceHistories); i++ {
				seed := base + uint64(i)
				t.Run(fmt.Sprint(seed), func(t *testing.T) {
					t.Parallel()
					runHistory(t, seed)
				})
			}
		})
	}
}

// The names of a history, each on its own Cisco organization, all behind one
// API key.
var sequenceOrgs = map[string]string{"alpha": "1000001", "bravo": "1000002", "charlie": "1000003"}

const brokenSecret = "wrong-client-secret-Hq2r"

// history is one random history and the model that checks it.
type history struct {
	t    *testing.T
	seed uint64
	rng  *rand.Rand
	env  *testEnv
	view *crashableStorage // the live backend's storage
	// zombies are rotations of crashed backends that may still run.
	zombies sync.WaitGroup

	names []string
	model map[string]*orgModel
	steps []string

	lastRotated map[string]time.Time // instant of each name's last rotation event
	eventsSeen  int
	// rejectedSeen is the key-rejected events looked at; stsRejectQueued
	// is set while an injected STS rejection may still be queued, and so
	// confirm a row and heal in the tick that confirms it.
	rejectedSeen    int
	stsRejectQueued bool
	logsSeen        int
	prevSim         ciscosim.State
	secretsSeen     map[string]bool
	// failedWAL counts, per name, WAL writes that failed in this step.
	failedWALMu sync.Mutex
	failedWAL   map[string]int
	// sts stands between the plugin and the simulator's STS; while it
	// rejects every key, as a broken proxy does, the key check lies.
	sts *switchableSTS
	// stsLied is set once STS rejected a key that works, in this history.
	stsLied bool
}

// orgModel is what the history knows about one name.
type orgModel struct {
	orgID        string
	brokenCreds  bool
	keyID        string    // the last key seen both served and Cisco's current
	issuedAt     time.Time // when that key appeared
	failing      bool      // a failure was seen since that key appeared
	orgDisabled  bool      // Cisco's rotation API is off for the org
	storedConfig bool
	// killedKey is a served key that a dashboard refresh killed without an
	// import, at killedAt; killTicks counts the healthy ticks, a minute or
	// more apart, since a routine check of it was due.
	killedKey string
	killedAt  time.Time
	killTicks int
	// served is the key the last check saw served.
	served string
	// gracefulAt is a graceful rotation the history asked for and saw
	// pending, with Cisco's rotation count then: it must run, or be ended
	// by a plain rotate or a delete, never dropped.
	gracefulAt        time.Time
	gracefulRotations int
	// lastNeedless is when a heal, or a recovery after a re-mark, last
	// rotated a key Cisco had not replaced, and lastNeedlessRemark when a
	// re-mark last marked such a key: the storm guard allows one a day.
	lastNeedless, lastNeedlessRemark time.Time
	remarkedSinceRotation            bool
	// rejectedReported is the key whose key-rejected event went out, until
	// a read shows it is no longer rejected. rejectedVerified is when AWS
	// had last accepted it before that event, and verifiedSeen what the
	// last look saw: a pass that came and went between two looks (a probe
	// in the background) shows only as a later key_verified_at.
	rejectedReported               string
	rejectedVerified, verifiedSeen interface{}
}

// step is what one step did, for the checks.
type step struct {
	name    string
	allowed map[string]int  // Cisco rotations the step may cause, per name
	failed  map[string]bool // a request answered a rotation failure
	// checked names had their credentials checked by a config write: a
	// refused token then is no rotation failure.
	checked map[string]bool
	// imported names had Cisco's current key stored by an import, which
	// replaces whatever failure was recorded on the key before it.
	imported map[string]bool
	tick     bool
	advance  time.Duration // how far the clock moved before the tick
	healthy  bool          // no storage fault and no Cisco fault was pending
	crashed  bool
	// manyTicks: the step ran ticks at many instants (a flapping STS).
	manyTicks bool
}

func newStep() *step {
	return &step{allowed: map[string]int{}, failed: map[string]bool{}, checked: map[string]bool{}, imported: map[string]bool{}, healthy: true}
}

// sequenceCoverage counts what the histories exercised, so that a run shows
// that its checks had something to check.
var sequenceCoverage coverage

type coverage struct {
	rotations, failures, staleSeen, crashes, healthyTicks, workingStale atomic.Int64
	killed, killsFound, heals, needless                                 atomic.Int64
}

func (c *coverage) String() string {
	return fmt.Sprintf("%d Cisco rotations, %d failures, %d stale keys seen, %d crashes, %d ticks Cisco answered, "+
		"%d ticks on a stale key that works, %d keys killed outside Vault, %d still served at their deadline (shown rejected), %d heals, "+
		"%d rotations of a working key that STS rejected",
		c.rotations.Load(), c.failures.Load(), c.staleSeen.Load(), c.crashes.Load(), c.healthyTicks.Load(), c.workingStale.Load(),
		c.killed.Load(), c.killsFound.Load(), c.heals.Load(), c.needless.Load())
}

func runHistory(t *testing.T, seed uint64) {
	runHistoryOn(t, newHistory(t, seed))
}

func runHistoryOn(t *testing.T, h *history) {
	for _, name := range h.names {
		st := newStep()
		h.configWrite(st, name)
		configured := st.name
		if h.rng.IntN(2) == 0 {
			h.manualRotate(st, name)
		} else {
			h.importKey(st, name)
		}
		h.steps = append(h.steps, fmt.Sprintf("   set up: %s; %s", configured, st.name))
		h.check(st)
	}
	for i := 0; i < *sequenceSteps; i++ {
		st := h.randomStep()
		h.steps = append(h.steps, fmt.Sprintf("%2d %s %s", i, h.env.clock.Now().Format(time.RFC3339), st.name))
		h.check(st)
	}
	h.zombies.Wait()
	h.checkNoSecretsLogged()
	if *sequenceSeed != 0 {
		t.Logf("steps:\n%s", strings.Join(h.steps, "\n"))
	}
}

func newHistory(t *testing.T, seed uint64) *history {
	orgIDs := []string{"1000001", "1000002", "1000003"}
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys:      []ciscosim.APIKey{{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: orgIDs}},
		NoRateLimits: true,
	}))
	h := &history{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), env: env,
		names: []string{"alpha", "bravo", "charlie"}, model: map[string]*orgModel{},
		lastRotated: map[string]time.Time{}, failedWAL: map[string]int{},
		secretsSeen: map[string]bool{testClientSecret: true, brokenSecret: true},
	}
	for _, name := range h.names {
		h.model[name] = &orgModel{orgID: sequenceOrgs[name]}
	}
	env.storage.failedPuts = h.noteFailedPut
	h.sts = newSwitchableSTS(t, env.srv.URL)
	h.crash() // boot a backend on a crashable view of the storage
	h.prevSim = env.sim.State()
	return h
}

// fail stops the history with its seed and steps, for a replay.
func (h *history) fail(format string, args ...interface{}) {
	h.t.Helper()
	h.t.Fatalf("seed %d: %s\nreplay: go test ./backend -run 'TestSequence$' -sequence.seed=%d\nsteps:\n%s",
		h.seed, fmt.Sprintf(format, args...), h.seed, strings.Join(h.steps, "\n"))
}

func (h *history) pick(options ...string) string { return options[h.rng.IntN(len(options))] }

func (h *history) randomName() string { return h.names[h.rng.IntN(len(h.names))] }

func (h *history) randomStep() *step {
	st := newStep()
	switch r := h.rng.IntN(110); {
	case r < 20:
		h.manualRotate(st, h.randomName())
	case r < 27:
		h.concurrentRotates(st, h.randomName())
	case r < 52:
		h.tickAfter(st, h.randomAdvance())
	case r < 64:
		h.configWrite(st, h.randomName())
	case r < 71:
		h.importKey(st, h.randomName())
	case r < 74:
		h.deleteOrg(st, h.randomName())
	case r < 82:
		h.ciscoFault(st, h.randomName())
	case r < 83:
		h.verifyKey(st, h.randomName())
	case r < 85:
		h.dashboardRefresh(st, h.randomName())
	case r < 95:
		h.withStorageFault(st)
	case r < 98:
		st.name = "crash"
		h.crash()
		st.crashed = true
	case r < 100:
		h.crashMidRotation(st, h.randomName())
	case r < 104:
		h.gracefulRotate(st, h.randomName())
	default:
		h.stsFault(st, h.randomName())
	}
	return st
}

// gracefulRotate asks for a graceful rotation of name.
func (h *history) gracefulRotate(st *step, name string) {
	st.name = "graceful rotate " + name
	m := h.model[name]
	resp, err := h.request(logical.UpdateOperation, "rotate/"+name, map[string]interface{}{"graceful": true})
	if failedResponse(resp, err) {
		return
	}
	if at := parseTimeField(resp.Data["rotates_at"]); !at.IsZero() && m.gracefulAt.IsZero() {
		m.gracefulAt, m.gracefulRotations = at, h.env.sim.State().Orgs[m.orgID].Rotations
	}
}

// stsFault makes STS lie about keys that work: one rejection, every key
// rejected from now on or no longer, or a flapping STS that rejects for a
// minute or two every six over a stretch of minute ticks; or no answer.
func (h *history) stsFault(st *step, name string) {
	m := h.model[name]
	switch h.rng.IntN(6) {
	case 5:
		// Storage refuses key writes for the middle one of three minute
		// ticks while STS rejects every key: a row of rejections that the
		// middle tick confirms is shown, and reported once.
		st.name = "STS rejects every key for 3 minute ticks; storage refuses key writes in the second"
		h.sts.reject.Store(true)
		h.stsLied = true
		for minute := 0; minute < 3; minute++ {
			if minute == 1 {
				h.env.storage.setFailPut(failUnder(keyPrefix, -1))
			}
			h.env.clock.Advance(time.Minute)
			h.allowTick(st)
			h.runTick()
			h.clearStorageFaults()
			h.checkRejectedEvents()
		}
		h.sts.reject.Store(false)
		st.tick, st.healthy, st.manyTicks = true, false, true
	case 0:
		h.env.sim.InjectFault(ciscosim.Fault{Kind: "sts_reject", Count: 1 + h.rng.IntN(2), OrgID: m.orgID})
		st.name = "STS rejects the next call or two for " + name
		h.stsLied, h.stsRejectQueued = true, true
	case 1:
		rejecting := !h.sts.reject.Load()
		h.sts.reject.Store(rejecting)
		h.stsLied = h.stsLied || rejecting
		st.name = fmt.Sprintf("STS rejects every key: %v", rejecting)
	case 2:
		h.env.sim.InjectFault(ciscosim.Fault{Kind: h.pick("sts_drop", "sts_5xx", "sts_delay"), Count: 1 + h.rng.IntN(3), DelayMS: 20, OrgID: m.orgID})
		st.name = "STS gives no answer for " + name
	default:
		// One step of many ticks: the checks run for them, rotations too.
		rejecting, phase, minutes := 1+h.rng.IntN(2), h.rng.IntN(6), 8+h.rng.IntN(16)
		st.name = fmt.Sprintf("STS flaps for %d minute ticks, rejecting %d in 6", minutes, rejecting)
		h.stsLied = true
		for minute := 0; minute < minutes; minute++ {
			h.sts.reject.Store((minute+phase)%6 < rejecting)
			h.env.clock.Advance(time.Minute)
			h.allowTick(st)
			h.runTick()
			h.checkRejectedEvents()
		}
		h.sts.reject.Store(false)
		st.tick, st.healthy, st.manyTicks = true, false, true
	}
}

// randomAdvance is how far the clock moves before a tick: Vault ticks about
// once a minute, and long jumps stand for quiet weeks.
func (h *history) randomAdvance() time.Duration {
	switch h.rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return time.Duration(1+h.rng.IntN(59)) * time.Second
	case 2:
		return time.Minute
	case 3:
		return time.Duration(1+h.rng.IntN(60)) * time.Minute
	case 4:
		return time.Duration(1+h.rng.IntN(48)) * time.Hour
	}
	return time.Duration(1+h.rng.IntN(40)) * 24 * time.Hour
}

func (h *history) request(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: h.view}
	if op == logical.UpdateOperation {
		checkFound, exists, err := h.env.b.HandleExistenceCheck(context.Background(), req)
		if err != nil {
			return nil, err
		}
		if checkFound && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return asHTTP(h.env.b.HandleRequest(context.Background(), req))
}

func failedResponse(resp *logical.Response, err error) bool {
	return err != nil || (resp != nil && resp.IsError())
}

func (h *history) manualRotate(st *step, name string) {
	st.name = "rotate " + name
	st.allowed[name]++
	if failedResponse(h.request(logical.UpdateOperation, "rotate/"+name, nil)) && h.model[name].storedConfig {
		st.failed[name] = true
	}
}

// concurrentRotates sends two or three rotate requests at once, sometimes
// with a tick.
func (h *history) concurrentRotates(st *step, name string) {
	n := 2 + h.rng.IntN(2)
	withTick := h.rng.IntN(2) == 0
	st.name = fmt.Sprintf("%d concurrent rotates of %s, tick %v", n, name, withTick)
	st.healthy = h.env.sim.State().PendingFaults == 0 && !h.sts.reject.Load()
	st.allowed[name] += n
	if withTick {
		h.allowTick(st)
	}
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if failedResponse(h.request(logical.UpdateOperation, "rotate/"+name, nil)) {
				failures.Add(1)
			}
		}()
	}
	if withTick {
		h.runTick()
	}
	wg.Wait()
	if failures.Load() > 0 && h.model[name].storedConfig {
		st.failed[name] = true
	}
}

func (h *history) tickAfter(st *step, d time.Duration) {
	h.env.clock.Advance(d)
	st.name = fmt.Sprintf("tick after %s", d)
	st.advance = d
	st.healthy = st.healthy && h.env.sim.State().PendingFaults == 0 && !h.sts.reject.Load()
	h.allowTick(st)
	if st.healthy {
		h.forbidRotatingWorkingKeys(st)
	}
	h.runTick()
}

// forbidRotatingWorkingKeys is the promise of the key check: a stale key
// that is still Cisco's current one works, and a tick with AWS and
// storage healthy must not rotate it, unless its schedule makes it due
// anyway. It lifts the mark, or, too soon after the mark for a check to
// prove anything, waits for a check that can.
func (h *history) forbidRotatingWorkingKeys(st *step) {
	sim := h.env.sim.State()
	for _, name := range h.names {
		resp, err := h.request(logical.ReadOperation, "config/"+name, nil)
		if err != nil || resp == nil || resp.IsError() {
			continue
		}
		d := resp.Data
		m := h.model[name]
		works := d["access_key_id"] == sim.Orgs[m.orgID].CurrentKeyID && d["access_key_id"] == m.keyID
		// An STS that gave no answer lately is not asked again for a while.
		stsAnswers := !h.env.b.checker.Silent(fmt.Sprint(d["sts_url"]))
		if d["key_state"] == "stale" && d["key_check"] == true && works && stsAnswers && !h.scheduleDue(name, d) {
			st.allowed[name] = 0
			sequenceCoverage.workingStale.Add(1)
			st.name += fmt.Sprintf(" (%s is stale and still works)", name)
		}
	}
}

// allowTick lets the tick rotate each name the model finds due, once.
func (h *history) allowTick(st *step) {
	st.tick = true
	// While STS lies, the tick that confirms a row of rejections may heal
	// the key at once; promise 8 bounds how often.
	if h.env.sim.State().PendingFaults == 0 {
		h.stsRejectQueued = false
	}
	lying := h.sts.reject.Load() || h.stsRejectQueued
	for _, name := range h.names {
		if lying || h.mayBeDue(name) {
			st.allowed[name]++
		}
	}
}

func (h *history) runTick() {
	_, err := h.env.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: h.view})
	if err != nil && !strings.Contains(err.Error(), logical.ErrUnsupportedPath.Error()) {
		h.env.logs.Write([]byte(fmt.Sprintf("{\"@message\":\"history: the tick failed: %v\"}\n", err)))
	}
}

func (h *history) configWrite(st *step, name string) {
	m := h.model[name]
	data := map[string]interface{}{}
	if !m.storedConfig {
		data = map[string]interface{}{
			"provider": "umbrella", "client_id": testClientID, "client_secret": testClientSecret, "org_id": m.orgID,
			"api_url": h.env.srv.URL + "/admin/v2", "token_url": h.env.srv.URL + "/auth/v2/token", "sts_url": h.sts.url,
		}
	}
	broken := m.brokenCreds
	switch h.rng.IntN(5) {
	case 0:
		data["rotation_period"] = h.pick("1h", "1d", "7d", "30d", "60d", "89d")
	case 1:
		data["rotation_schedule"] = h.pick("0 3 * * *", "0 3 * * 1", "0 */6 * * *", "30 2 1,15 * *")
		data["rotation_window"] = h.pick("0", "1h", "3h")
	case 2:
		data["disable_automated_rotation"] = h.rng.IntN(3) == 0
		data["key_check"] = h.rng.IntN(4) > 0
		data["key_check_interval"] = h.pick("1m", "10m", "1h", "0")
		data["rotate_rejected_key"] = h.rng.IntN(4) > 0
	case 3:
		broken = !broken
		data["client_secret"] = map[bool]string{true: brokenSecret, false: testClientSecret}[broken]
		// Half the time the operator skips the check, so that a wrong
		// secret gets stored and rotations fail.
		if h.rng.IntN(2) == 0 {
			data["verify_connection"] = false
		}
	default:
		data["rotation_period"] = "0"
	}
	st.name = fmt.Sprintf("config %s %v", name, redactedFields(data))
	st.checked[name] = true
	if !failedResponse(h.request(logical.UpdateOperation, "config/"+name, data)) {
		m.brokenCreds = broken
	}
}

// redactedFields prints a config write without its secret.
func redactedFields(data map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(data))
	for k, v := range data {
		if k == "client_secret" {
			v = map[bool]string{true: "<broken>", false: "<good>"}[v == brokenSecret]
		}
		if k != "api_url" && k != "token_url" && k != "sts_url" {
			out[k] = v
		}
	}
	return out
}

// dashboardRefresh refreshes the key in Cisco's dashboard and tells Vault
// nothing: the served key dies, and only the scheduled checks can find it.
func (h *history) dashboardRefresh(st *step, name string) {
	st.name = "dashboard refresh of " + name + " without an import"
	m := h.model[name]
	// Only a key that was Cisco's current one dies here: a dead key the
	// plugin already knows of (stale) keeps the promises it had.
	current := m.served != "" && h.env.sim.State().Orgs[m.orgID].CurrentKeyID == m.served
	if _, ok := h.env.sim.RefreshKey(m.orgID); !ok {
		st.name += " (the org is disabled)"
		return
	}
	if m.killedKey == "" && current {
		sequenceCoverage.killed.Add(1)
		m.killedKey, m.killedAt, m.killTicks = m.served, h.env.clock.Now(), 0
	}
}

// importKey refreshes the key in Cisco's dashboard and imports it; an
// operator whose import fails retries it.
func (h *history) importKey(st *step, name string) {
	st.name = "import " + name
	m := h.model[name]
	if !m.storedConfig {
		return
	}
	fresh, ok := h.env.sim.RefreshKey(m.orgID)
	if !ok {
		st.name += " (the org is disabled: no dashboard refresh)"
		return
	}
	data := map[string]interface{}{
		"access_key_id": fresh.CurrentKeyID, "secret_access_key": fresh.SecretAccessKey, "key_creation_date": fresh.KeyCreationDate,
	}
	if h.rng.IntN(3) == 0 {
		h.mistypedImport(st, name, data)
	}
	if h.rng.IntN(4) == 0 && h.importsAreChecked(st, name) && h.importRacingARotate(st, name, data) {
		return
	}
	if resp, err := h.request(logical.UpdateOperation, "import/"+name, data); failedResponse(resp, err) {
		h.clearStorageFaults()
		st.name += " (failed, retried)"
		if resp != nil && resp.IsError() && strings.Contains(resp.Error().Error(), "AWS STS rejected") && h.stsLied {
			// STS lies: the operator imports without the check.
			data["verify"] = false
			st.name += " without the check"
		}
		resp, err := h.request(logical.UpdateOperation, "import/"+name, data)
		if failedResponse(resp, err) && h.remarkedDuringImport(name, err) {
			// A re-check of a lifted mark found the key the refresh killed
			// and marked it stale while the import ran: the 409 says to
			// import again, as an operator would.
			st.name += " (409 after a re-mark, imported again)"
			resp, err = h.request(logical.UpdateOperation, "import/"+name, data)
		}
		if failedResponse(resp, err) {
			h.fail("a retried import failed: %v %v", resp, err)
		}
	}
	st.imported[name] = true
}

// remarkedDuringImport reports whether an import failed with a 409 because
// a re-check marked name's key stale again meanwhile.
func (h *history) remarkedDuringImport(name string, err error) bool {
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) || coded.Code() != http.StatusConflict {
		return false
	}
	k, getErr := getKey(context.Background(), h.env.storage, name)
	return getErr == nil && k != nil && k.Stale() && strings.Contains(k.LastError(), "Cisco replaced it after all")
}

// importsAreChecked reports whether an import of name now is checked
// against a healthy AWS.
func (h *history) importsAreChecked(st *step, name string) bool {
	cfg, _ := h.request(logical.ReadOperation, "config/"+name, nil)
	return cfg != nil && cfg.Data["key_check"] == true && h.env.sim.State().PendingFaults == 0 && st.healthy && !h.sts.reject.Load()
}

// importRacingARotate imports while a rotate request of the same name
// runs. Either may land first, or the import may be refused; the promises
// checked after the step say that no dead key is served as current. Only
// a check can tell an import that starts after the rotation landed from
// one that started before it, so the race runs with checks on. It reports
// false when the import did not land and Cisco still shows the imported
// key: the operator imports it again.
func (h *history) importRacingARotate(st *step, name string, data map[string]interface{}) bool {
	st.name += ", racing a rotate"
	st.allowed[name]++
	rotateFailed := make(chan bool, 1)
	go func() {
		rotateFailed <- failedResponse(h.request(logical.UpdateOperation, "rotate/"+name, nil))
	}()
	imported := !failedResponse(h.request(logical.UpdateOperation, "import/"+name, data))
	if <-rotateFailed && h.model[name].storedConfig {
		st.failed[name] = true
	}
	if imported || h.env.sim.State().Orgs[h.model[name].orgID].CurrentKeyID != data["access_key_id"] {
		return true
	}
	st.name += " (refused, imported again)"
	return false
}

// mistypedImport imports the key with a mistyped secret first. With
// storage and AWS healthy, the import must be refused and change nothing.
func (h *history) mistypedImport(st *step, name string, data map[string]interface{}) {
	mistyped := map[string]interface{}{"access_key_id": data["access_key_id"], "key_creation_date": data["key_creation_date"],
		"secret_access_key": mistype(data["secret_access_key"].(string))}
	before, _ := h.request(logical.ReadOperation, "config/"+name, nil)
	checked := h.importsAreChecked(st, name)
	resp, err := h.request(logical.UpdateOperation, "import/"+name, mistyped)
	st.name += ", first with a mistyped secret"
	if !checked {
		return
	}
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "rejected secret_access_key") {
		h.fail("an import with a mistyped secret was not refused: %v %v", resp, err)
	}
	after, _ := h.request(logical.ReadOperation, "config/"+name, nil)
	if after == nil || after.Data["version"] != before.Data["version"] || after.Data["access_key_id"] != before.Data["access_key_id"] {
		h.fail("a refused import changed the stored key of %s", name)
	}
}

// verifyKey checks the served key now: with AWS healthy, the answer is the
// truth, valid exactly when the key is Cisco's current one.
func (h *history) verifyKey(st *step, name string) {
	st.name = "verify " + name
	m := h.model[name]
	healthy := h.env.sim.State().PendingFaults == 0 && !h.sts.reject.Load()
	resp, err := h.request(logical.UpdateOperation, "verify/"+name, nil)
	if err != nil || resp == nil || resp.IsError() || !healthy {
		return
	}
	current := h.env.sim.State().Orgs[m.orgID].CurrentKeyID
	if valid := resp.Data["result"] == "valid"; valid != (resp.Data["access_key_id"] == current) {
		h.fail("verify/%s answered %v for key %v; Cisco's current key is %s", name, resp.Data["result"], resp.Data["access_key_id"], current)
	}
}

func (h *history) deleteOrg(st *step, name string) {
	st.name = "delete " + name
	// A delete ends a pending graceful rotation, even one that fails half
	// way (the key goes first).
	h.model[name].gracefulAt = time.Time{}
	_, _ = h.request(logical.DeleteOperation, "config/"+name, nil)
}

func (h *history) ciscoFault(st *step, name string) {
	m := h.model[name]
	if h.rng.IntN(4) == 0 {
		m.orgDisabled = !m.orgDisabled
		h.env.sim.SetOrg(ciscosim.Org{ID: m.orgID, Disabled: m.orgDisabled})
		st.name = fmt.Sprintf("Cisco's rotation API for %s: disabled %v", name, m.orgDisabled)
		return
	}
	f := ciscosim.Fault{
		Kind: h.pick("5xx", "error200", "malformed", "empty", "drop", "expire_token", "old_date",
			"sts_5xx", "sts_throttling", "sts_drop"),
		Count: 1 + h.rng.IntN(2), OrgID: m.orgID,
	}
	st.name = fmt.Sprintf("Cisco fault %s x%d for %s", f.Kind, f.Count, name)
	h.env.sim.InjectFault(f)
}

// withStorageFault makes storage fail during one action.
func (h *history) withStorageFault(st *step) {
	prefix := h.pick(keyPrefix, "wal/", configPrefix, "")
	op := h.pick("put", "put", "delete", "get")
	n := -1 // always
	if h.rng.IntN(3) > 0 {
		n = 1 + h.rng.IntN(5)
	}
	fail := failUnder(prefix, n)
	switch op {
	case "put":
		h.env.storage.setFailPut(fail)
	case "delete":
		h.env.storage.setFailDelete(fail)
	default:
		h.env.storage.mu.Lock()
		h.env.storage.failGet = fail
		h.env.storage.mu.Unlock()
	}
	sub := &step{allowed: st.allowed, failed: st.failed, checked: st.checked, imported: st.imported, healthy: false}
	name := h.randomName()
	switch h.rng.IntN(6) {
	case 0:
		m := h.model[name]
		sim := h.env.sim.State()
		before, ciscoClean := sim.Orgs[m.orgID].Rotations, sim.PendingFaults == 0
		h.manualRotate(sub, name)
		// A key write that storage refuses fewer times than a rotation
		// tries it loses nothing: the key Cisco issued is served.
		if op == "put" && (prefix == keyPrefix || prefix == "") && n > 0 && n < storeAttempts && ciscoClean {
			h.clearStorageFaults()
			if org := h.env.sim.State().Orgs[m.orgID]; org.Rotations == before+1 {
				cfg, _ := h.request(logical.ReadOperation, "config/"+name, nil)
				if cfg == nil || cfg.Data["access_key_id"] != org.CurrentKeyID || cfg.Data["key_state"] != "current" {
					h.fail("storage refused %d key writes of %d tries, and the key Cisco issued to %s is not served as current: %v", n, storeAttempts, name, cfg)
				}
			}
		}
	case 1:
		h.tickAfter(sub, h.randomAdvance())
	case 2:
		h.configWrite(sub, name)
	case 3:
		h.importKey(sub, name)
	case 4:
		h.deleteOrg(sub, name)
	default:
		sub.name = "crash"
		h.crash()
		sub.crashed = true
	}
	h.clearStorageFaults()
	st.name = fmt.Sprintf("storage %s of %q fails (%d times, -1 always) during: %s", op, prefix, n, sub.name)
	st.tick, st.crashed, st.healthy = sub.tick, sub.crashed, false
}

func (h *history) clearStorageFaults() {
	h.env.storage.setFailPut(nil)
	h.env.storage.setFailDelete(nil)
	h.env.storage.mu.Lock()
	h.env.storage.failGet = nil
	h.env.storage.mu.Unlock()
}

// noteFailedPut attributes a failed WAL write to its name.
func (h *history) noteFailedPut(entry *logical.StorageEntry) {
	if !strings.HasPrefix(entry.Key, "wal/") {
		return
	}
	var w struct {
		Data rotationWAL `json:"data"`
	}
	if err := entry.DecodeJSON(&w); err == nil && w.Data.Name != "" {
		h.failedWALMu.Lock()
		h.failedWAL[w.Data.Name]++
		h.failedWALMu.Unlock()
	}
}

// crash stops the live backend dead, with its storage, and boots a new
// one on the same storage, as a restarted Vault does.
func (h *history) crash() {
	if h.view != nil {
		h.view.dead.Store(true)
	}
	// A WAL entry left at the crash is an outcome nobody knows: the new
	// backend will mark its key stale and recover it.
	for _, name := range h.names {
		if h.walExists(name) {
			h.model[name].failing = true
		}
		// A rejection kept in memory only (storage refused it) is
		// forgotten: the new backend confirms and reports it again.
		h.model[name].rejectedReported = ""
	}
	h.view = &crashableStorage{Storage: h.env.storage}
	// A failed load is retried by the next request, as in Vault.
	_ = h.env.boot(h.view)
	h.env.b.limiter = cisco.NewLimiter(cisco.WithLimits())
	h.env.b.storeRetryWait = time.Millisecond
	h.lastRotated = map[string]time.Time{}
	sequenceCoverage.crashes.Add(1)
}

// crashMidRotation crashes while Cisco handles a rotation, so that the
// reply reaches a dead process, or before the call.
func (h *history) crashMidRotation(st *step, name string) {
	st.name = "crash while rotating " + name
	m := h.model[name]
	if !m.storedConfig {
		h.crash()
		st.crashed = true
		return
	}
	if h.rng.IntN(3) == 0 {
		// Crash between the WAL entry and the Cisco call: the key works,
		// and nobody knows it.
		st.name += ", before Cisco was called"
		stored, err := getKey(context.Background(), h.env.storage, name)
		if err == nil {
			_, err = putRotationWAL(context.Background(), h.env.storage, name, stored, h.env.clock.Now())
		}
		if err != nil {
			h.fail("writing the WAL entry of the crashed rotation: %v", err)
		}
		h.crash()
		st.crashed = true
		return
	}
	st.allowed[name]++
	h.env.sim.InjectFault(ciscosim.Fault{Kind: "delay", DelayMS: 30, OrgID: m.orgID})
	calls := h.env.sim.State().RotateCalls
	h.zombies.Add(1)
	b, view := h.env.b, h.view
	done := make(chan struct{})
	go func() {
		defer h.zombies.Done()
		defer close(done)
		_, _ = b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "rotate/" + name, Storage: view})
	}()
	// Crash once Cisco has the call, or at once if it never comes (bad
	// credentials).
	for h.env.sim.State().RotateCalls == calls {
		select {
		case <-done:
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	h.crash()
	st.crashed = true
	// Let the dead rotation end before the checks read Cisco's state.
	h.zombies.Wait()
	h.env.waitSimIdle()
}

// crashableStorage is one backend's view of the storage; after a crash it
// fails every call, as a dead process writes nothing more.
type crashableStorage struct {
	logical.Storage
	dead atomic.Bool
}

var errCrashed = fmt.Errorf("the process crashed")

func (c *crashableStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if c.dead.Load() {
		return nil, errCrashed
	}
	return c.Storage.Get(ctx, key)
}

func (c *crashableStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if c.dead.Load() {
		return nil, errCrashed
	}
	return c.Storage.List(ctx, prefix)
}

func (c *crashableStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if c.dead.Load() {
		return errCrashed
	}
	return c.Storage.Put(ctx, e)
}

func (c *crashableStorage) Delete(ctx context.Context, key string) error {
	if c.dead.Load() {
		return errCrashed
	}
	return c.Storage.Delete(ctx, key)
}

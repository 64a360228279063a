package backend

// The promises the sequence test checks after every step:
//
//  1. No Cisco rotation that the history did not call for: per step and
//     name, at most one per rotate request plus one for a tick when the
//     model finds the key due; and no scheduled or recovery rotation right
//     after another rotation of the same name at the same instant.
//  2. The served key is Cisco's current one, or it is marked stale with a
//     recovery due within the backoff.
//  3. After a tick that Cisco answered, nothing is left due, and no key is
//     older than 89 days (plus a pending retry's backoff).
//  4. Every failure is recorded (last_rotation_error_time or an event) and
//     logged.
//  5. No secret in any log line or config read; creds ttl is 1 to 50 s.
//  6. The key check tells the truth: a tick with AWS and storage healthy
//     never rotates a stale key that still works (sequence_test.go,
//     forbidRotatingWorkingKeys); verify answers valid exactly for Cisco's
//     current key; an import with a mistyped secret changes nothing; and
//     no read shows Cisco's current key as rejected.
//  8. STS that lies (rejects a key that works, flaps, rejects everything)
//     costs at most one rotation a day per name of a key Cisco had not
//     replaced (a heal, or a recovery after a re-mark), and at most one
//     re-mark a day of such a key; a key-rejected event goes out once per
//     key and row. A pending graceful rotation runs, or is ended by a plain
//     rotate or a delete: nothing else drops it. A key write that storage
//     refuses fewer times than a rotation tries it loses nothing
//     (sequence_test.go, withStorageFault).
//  7. A key killed outside Vault (a dashboard refresh, no import) may be
//     served as it was only until key_check_interval has passed and two
//     healthy ticks a minute apart have run: then it is Cisco's current key
//     again (healed, or imported), or shown rejected, or stale. A restart
//     would show the same. No heal rotates a key that STS never accepted.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// mayBeDue reports whether a tick now may rotate name: the model finds the
// key due, or something failed or is unknown since the key appeared.
func (h *history) mayBeDue(name string) bool {
	m := h.model[name]
	resp, err := h.request(logical.ReadOperation, "config/"+name, nil)
	if err != nil || resp == nil || resp.IsError() {
		return err != nil // unknown: allow
	}
	d := resp.Data
	// Only what the model saw: a failure since the key appeared, or a WAL
	// entry, whose outcome the plugin cannot know.
	if m.failing || h.walExists(name) {
		return true
	}
	// A stale key's recovery and a rejected key's heal are due: how many
	// of those a lying STS may cause is promise 8's.
	if d["key_state"] == "stale" || d["key_state"] == "rejected" {
		return true
	}
	if id, _ := d["access_key_id"].(string); id != "" && id != h.env.sim.State().Orgs[m.orgID].CurrentKeyID {
		return true
	}
	return h.scheduleDue(name, d)
}

// scheduleDue reports whether the model finds name's key due by its
// settings alone, or by a graceful rotation's time, from the config read d.
func (h *history) scheduleDue(name string, d map[string]interface{}) bool {
	m := h.model[name]
	// A graceful rotation runs whatever disable_automated_rotation says.
	if g := parseTimeField(d["graceful_rotation_at"]); !g.IsZero() && !g.After(h.env.clock.Now()) {
		return true
	}
	if m.keyID == "" || d["disable_automated_rotation"] == true {
		return false
	}
	due := m.issuedAt.Add(time.Duration(d["rotation_period"].(int64)) * time.Second)
	if spec, ok := d["rotation_schedule"].(string); ok {
		sched, err := rotation.DefaultScheduler.Parse(spec)
		if err != nil {
			return true
		}
		due = sched.Next(m.issuedAt)
	}
	if limit := m.issuedAt.Add(maxRotationGap); due.After(limit) {
		due = limit
	}
	return !due.After(h.env.clock.Now())
}

func (h *history) walExists(name string) bool {
	found := false
	_ = h.env.b.forEachRotationWAL(h.t.Context(), h.env.storage.Storage, func(_ string, data interface{}) error {
		var w rotationWAL
		found = found || (mapToStruct(data, &w) == nil && w.Name == name)
		return nil
	})
	return found
}

func (h *history) check(st *step) {
	h.t.Helper()
	now := h.env.clock.Now()
	sim := h.env.sim.State()
	h.checkRejectedEvents()
	failEvents, remarked := h.checkEvents(now, !st.manyTicks)
	logged := h.newWarnings()
	h.failedWALMu.Lock()
	failedWAL := h.failedWAL
	h.failedWAL = map[string]int{}
	h.failedWALMu.Unlock()

	for _, name := range h.names {
		m := h.model[name]
		org, prev := sim.Orgs[m.orgID], h.prevSim.Orgs[m.orgID]
		got := org.Rotations - prev.Rotations
		if got > st.allowed[name] {
			h.fail("Cisco rotated %s %d times in a step that allowed %d (model: key %s issued %s, failing %v; last rotate event's trigger %q)",
				name, got, st.allowed[name], m.keyID, m.issuedAt.Format(time.RFC3339), m.failing, h.lastTrigger(name))
		}
		sequenceCoverage.rotations.Add(int64(got))
		cfg, err := h.request(logical.ReadOperation, "config/"+name, nil)
		if err != nil || (cfg != nil && cfg.IsError()) {
			h.fail("config read of %s with storage healthy: %v %v", name, cfg, err)
		}
		if st.imported[name] {
			m.lastNeedless, m.lastNeedlessRemark = time.Time{}, time.Time{} // an import ends the storm guard
		}
		m.storedConfig = cfg != nil
		if !m.storedConfig {
			m.keyID, m.failing, m.gracefulAt, m.rejectedReported = "", false, time.Time{}, ""
			continue
		}
		if !m.gracefulAt.IsZero() && parseTimeField(cfg.Data["graceful_rotation_at"]).IsZero() {
			if org.Rotations == m.gracefulRotations {
				h.fail("%s's graceful rotation due %s was dropped: no rotation ran, and no plain rotate or delete ended it", name, m.gracefulAt.Format(time.RFC3339))
			}
			m.gracefulAt = time.Time{}
		}

		h.checkNoSecretIn("config/"+name, cfg.Data, org)
		d := cfg.Data
		served, _ := d["access_key_id"].(string)
		current := d["key_state"] != "none" && served == org.CurrentKeyID
		h.countKillTicks(st, name, d, now)
		if current || served != m.killedKey {
			m.killedKey = ""
		}
		m.served = served
		if current {
			h.checkCreds(name, org)
			if m.keyID != served {
				m.keyID, m.issuedAt, m.failing = served, now, false
				// Over many ticks the key may have appeared before the
				// step's end: its schedule counts from when it was stored.
				if t := parseTimeField(d["last_vault_rotation"]); st.manyTicks && !t.IsZero() && t.Before(now) {
					m.issuedAt = t
				}
			}
		} else if d["key_state"] != "none" {
			killed := m.killedKey != "" && served == m.killedKey
			if killed && h.killFound(m) && m.killTicks == 2 {
				sequenceCoverage.killsFound.Add(1)
			}
			switch {
			case killed && d["key_state"] == "rejected":
			case killed && d["key_state"] == "current" && !h.killFound(m):
			case d["key_state"] != "stale":
				h.fail("%s serves %s, Cisco's current key is %s, and the key is not marked stale or rejected: %v (killed outside Vault: %v, %d healthy ticks since its check was due)",
					name, served, org.CurrentKeyID, d, killed, m.killTicks)
			}
			if d["key_state"] != "stale" {
				// not stale: no recovery to be due
			} else if next := parseTimeField(d["next_vault_rotation"]); next.IsZero() || next.After(now.Add(bucketkey.MaxRetryBackoff)) {
				h.fail("%s is stale but its recovery is not due within %s: next_vault_rotation %v", name, bucketkey.MaxRetryBackoff, d["next_vault_rotation"])
			}
		}

		// A failure the plugin recorded schedules a retry, also one the
		// simulator cannot see (a second expired-token answer).
		if d["consecutive_failures"] != 0 {
			m.failing = true
		}
		// A rotation whose WAL write fails sends a rotate-fail event. Another
		// failed WAL write is a re-mark's that storage refused: the key's
		// error fields show it until an import of Cisco's current key
		// replaces the key, as it should.
		failed := st.failed[name] || (org.Failures > prev.Failures && !st.checked[name]) ||
			(failedWAL[name] > 0 && !(st.imported[name] && current)) ||
			(org.Rotations > prev.Rotations && !current)
		if d["key_state"] == "stale" {
			sequenceCoverage.staleSeen.Add(1)
		}
		if d["key_check_result"] == string(stscheck.Invalid) && served == org.CurrentKeyID && !h.stsLied {
			h.fail("%s shows Cisco's current key %s as rejected by AWS: %v", name, served, d["key_verify_error"])
		}
		if failed {
			sequenceCoverage.failures.Add(1)
			if !logged[name] {
				h.fail("a failure of %s was not logged", name)
			}
			if parseTimeField(d["last_rotation_error_time"]) != now && !failEvents[name] {
				h.fail("a failure of %s was not recorded: last_rotation_error_time %v, no rotate-fail event", name, d["last_rotation_error_time"])
			}
			if !current || d["consecutive_failures"] != 0 {
				m.failing = true
			}
		}
		// A key that this tick's re-check marked stale again is recovered
		// by the next tick, as every stale key is.
		if st.tick && st.healthy && d["key_state"] != "none" && !m.brokenCreds && !org.Disabled && !remarked[name] {
			sequenceCoverage.healthyTicks.Add(1)
			h.checkNothingDue(name, d, now)
		}
	}
	h.checkRestartWouldServe(sim)
	h.prevSim = sim
}

// checkRestartWouldServe boots a second backend on a copy of the storage, as
// a restart now would, and checks that it too serves Cisco's current key or
// says stale: the cache may know what storage does not.
func (h *history) checkRestartWouldServe(sim ciscosim.State) {
	ctx := h.t.Context()
	copied := &logical.InmemStorage{}
	keys, err := logical.CollectKeys(ctx, h.env.storage.Storage)
	if err != nil {
		h.fail("listing storage: %v", err)
	}
	for _, key := range keys {
		entry, err := h.env.storage.Storage.Get(ctx, key)
		if err != nil || entry == nil {
			h.fail("copying %s: %v", key, err)
		}
		if err := copied.Put(ctx, entry); err != nil {
			h.fail("copying %s: %v", key, err)
		}
	}
	conf := &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: h.env.system, StorageView: copied}
	b := newBackend(conf)
	b.now = h.env.clock.Now
	if err := b.Setup(ctx, conf); err != nil {
		h.fail("setup: %v", err)
	}
	defer b.Cleanup(ctx)
	// Half the restarts have no initialize call, so that their first reads
	// come before any load; the others load in the background while the
	// creds reads run. Either way a creds read waits only for the WAL.
	if h.rng.IntN(2) == 0 {
		if err := b.Initialize(ctx, &logical.InitializationRequest{Storage: copied}); err != nil {
			h.fail("a restart on healthy storage could not initialize: %v", err)
		}
	}
	for _, name := range h.names {
		resp, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/" + name, Storage: copied})
		if err != nil || resp == nil || resp.IsError() {
			continue // not configured or no key
		}
		served, _ := resp.Data["access_key_id"].(string)
		m := h.model[name]
		if resp.Data["key_state"] == "current" && served != sim.Orgs[m.orgID].CurrentKeyID && !(served == m.killedKey && !h.killFound(m)) {
			h.fail("a restart's first creds read would serve %s's dead key %s as current", name, served)
		}
	}
	for _, name := range h.names {
		resp, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "config/" + name, Storage: copied})
		if err != nil || resp == nil || resp.IsError() {
			continue // not configured; the live checks cover the rest
		}
		d := resp.Data
		served, _ := d["access_key_id"].(string)
		m := h.model[name]
		if d["key_state"] == "current" && served != sim.Orgs[m.orgID].CurrentKeyID && !(served == m.killedKey && !h.killFound(m)) {
			h.fail("a restart now would serve %s's dead key %s as current", name, served)
		}
	}
}

// countKillTicks counts, for a key killed outside Vault, the healthy ticks
// a minute or more apart since its routine check was due.
func (h *history) countKillTicks(st *step, name string, d map[string]interface{}, now time.Time) {
	m := h.model[name]
	iv, _ := d["key_check_interval"].(int64)
	if m.killedKey == "" || !st.tick || !st.healthy || st.advance < time.Minute || d["key_check"] != true || iv == 0 {
		return
	}
	if !now.Before(m.killedAt.Add(time.Duration(iv) * time.Second)) {
		m.killTicks++
	}
}

// killFound reports whether the promise of a key killed outside Vault
// applies now: two healthy ticks ran since its check was due.
func (h *history) killFound(m *orgModel) bool { return m.killTicks >= 2 }

// checkNothingDue checks name after a tick that Cisco answered.
func (h *history) checkNothingDue(name string, d map[string]interface{}, now time.Time) {
	m := h.model[name]
	if next := parseTimeField(d["next_vault_rotation"]); !next.IsZero() && !next.After(now) {
		h.fail("after a tick that Cisco answered, %s is still due: next_vault_rotation %v", name, d["next_vault_rotation"])
	}
	if d["disable_automated_rotation"] == true || m.keyID == "" {
		return
	}
	// An older key is allowed only while a failed attempt waits for its
	// retry: Cisco did not answer then.
	age := now.Sub(m.issuedAt)
	next := parseTimeField(d["next_vault_rotation"])
	retrying := d["consecutive_failures"] != 0 && !next.IsZero() && !next.After(now.Add(bucketkey.MaxRetryBackoff))
	if age > maxRotationGap && !retrying {
		h.fail("after a tick that Cisco answered, %s serves a key %s old", name, age)
	}
}

func (h *history) checkCreds(name string, org ciscosim.OrgState) {
	resp, err := h.request(logical.ReadOperation, "creds/"+name, nil)
	if err != nil || resp == nil || resp.IsError() {
		h.fail("creds read of %s: %v %v", name, resp, err)
	}
	if resp.Data["secret_access_key"] != org.SecretAccessKey {
		h.fail("creds of %s: the secret is not Cisco's current one", name)
	}
	ttl, ok := resp.Data["ttl"].(int64)
	if !ok || ttl < 1 || ttl > int64(credsRereadInterval/time.Second) {
		h.fail("creds of %s: ttl %v is not a JSON integer from 1 to 50", name, resp.Data["ttl"])
	}
	if p, ok := resp.Data["rotation_period"].(int64); !ok || p <= 0 {
		h.fail("creds of %s: rotation_period %v", name, resp.Data["rotation_period"])
	}
}

// checkEvents checks the order of the rotation events since the last step
// and returns the names that had a rotate-fail event, and those that a
// re-check marked stale again.
func (h *history) checkEvents(now time.Time, oneInstant bool) (failed, remarked map[string]bool) {
	h.env.events.Lock()
	events := append([]logical.MockEvent(nil), h.env.events.Events[h.eventsSeen:]...)
	h.eventsSeen = len(h.env.events.Events)
	h.env.events.Unlock()
	failed, remarked = map[string]bool{}, map[string]bool{}
	for _, ev := range events {
		fields := ev.Event.Metadata.Fields
		name, trigger := fields["name"].GetStringValue(), fields["trigger"].GetStringValue()
		m := h.model[name]
		// needless: Cisco had not replaced the served key.
		needless := m != nil && m.served != "" && m.served == h.prevSim.Orgs[m.orgID].CurrentKeyID
		switch string(ev.Type) {
		case bucketkey.NoticeRotate:
			if trigger == triggerHeal && m != nil {
				sequenceCoverage.heals.Add(1)
				// Over many ticks the served key may have changed since the
				// last check: only a single instant knows which key healed.
				if oneInstant && !h.env.sim.State().STSAccepted[m.served] {
					h.fail("a heal rotation of %s, whose key %s STS never accepted", name, m.served)
				}
			}
			if m != nil && needless && (trigger == triggerHeal || trigger == triggerRecovery && m.remarkedSinceRotation) {
				if !m.lastNeedless.IsZero() && now.Sub(m.lastNeedless) < bucketkey.HealCooldown {
					h.fail("a second %s rotation of %s's working key %s within a day of the one at %s: STS lies, Cisco did not replace it",
						trigger, name, m.served, m.lastNeedless.Format(time.RFC3339))
				}
				m.lastNeedless = now
				sequenceCoverage.needless.Add(1)
			}
			if m != nil {
				m.remarkedSinceRotation = false
				if trigger == triggerManual {
					// An operator acted: the storm guard ends.
					m.lastNeedless, m.lastNeedlessRemark = time.Time{}, time.Time{}
				}
			}
			if last, ok := h.lastRotated[name]; ok && last.Equal(now) && trigger != triggerManual && oneInstant {
				h.fail("a %s rotation of %s right after another rotation at the same instant: a double rotation", trigger, name)
			}
			h.lastRotated[name] = now
		case bucketkey.NoticeRotateFail:
			failed[name] = true
			delete(h.lastRotated, name)
			if strings.Contains(fields["error"].GetStringValue(), "Cisco replaced it after all") {
				remarked[name] = true
				if m != nil {
					m.remarkedSinceRotation = true
					if needless {
						if !m.lastNeedlessRemark.IsZero() && now.Sub(m.lastNeedlessRemark) < bucketkey.HealCooldown {
							h.fail("%s's working key %s marked stale again within a day of the re-mark at %s", name, m.served, m.lastNeedlessRemark.Format(time.RFC3339))
						}
						m.lastNeedlessRemark = now
					}
				}
			}
		}
	}
	return failed, remarked
}

// checkRejectedEvents checks that a key-rejected event goes out once per
// key and row of rejections: the row ends with a pass, or a new key. It
// reads each name's key, then looks at the events since its last call.
func (h *history) checkRejectedEvents() {
	h.env.events.Lock()
	events := append([]logical.MockEvent(nil), h.env.events.Events[h.rejectedSeen:]...)
	h.rejectedSeen = len(h.env.events.Events)
	h.env.events.Unlock()
	now := map[string]map[string]interface{}{}
	for _, name := range h.names {
		if cfg, err := h.request(logical.ReadOperation, "config/"+name, nil); err == nil && cfg != nil {
			now[name] = cfg.Data
		} else if err == nil {
			now[name] = map[string]interface{}{}
		}
	}
	for _, ev := range events {
		fields := ev.Event.Metadata.Fields
		name := fields["name"].GetStringValue()
		m := h.model[name]
		if string(ev.Type) != bucketkey.NoticeKeyRejected || m == nil {
			continue
		}
		v := fields["version"].GetStringValue()
		if d, read := now[name]; m.rejectedReported == v && read && d["key_verified_at"] == m.rejectedVerified {
			h.fail("a second key-rejected event of %s version %s, with no pass or new key in between", name, v)
		}
		m.rejectedReported, m.rejectedVerified = v, m.verifiedSeen
	}
	for _, name := range h.names {
		m, d := h.model[name], now[name]
		if d == nil {
			continue // unreadable now: look again next time
		}
		m.verifiedSeen = d["key_verified_at"]
		if m.rejectedReported != "" && (fmtVersion(d["version"]) != m.rejectedReported || d["key_check_result"] == string(stscheck.Valid)) {
			m.rejectedReported = ""
		}
	}
}

// lastTrigger is the trigger of name's last rotate event.
func (h *history) lastTrigger(name string) string {
	h.env.events.Lock()
	defer h.env.events.Unlock()
	for i := len(h.env.events.Events) - 1; i >= 0; i-- {
		f := h.env.events.Events[i].Event.Metadata.Fields
		if string(h.env.events.Events[i].Type) == bucketkey.NoticeRotate && f["name"].GetStringValue() == name {
			return f["trigger"].GetStringValue()
		}
	}
	return ""
}

// fmtVersion is a read's version field as events carry it.
func fmtVersion(v interface{}) string {
	if n, ok := v.(int); ok {
		return strconv.Itoa(n)
	}
	return fmt.Sprint(v)
}

// newWarnings returns the names of the WARN and ERROR lines logged since
// the last step.
func (h *history) newWarnings() map[string]bool {
	all := h.env.logs.String()
	lines := all[h.logsSeen:]
	h.logsSeen = len(all)
	names := map[string]bool{}
	for _, line := range strings.Split(lines, "\n") {
		var entry struct {
			Level string `json:"@level"`
			Name  string `json:"name"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && (entry.Level == "warn" || entry.Level == "error") {
			names[entry.Name] = true
		}
	}
	return names
}

// checkNoSecretIn checks a config read: no secret field, and no value that
// is a secret.
func (h *history) checkNoSecretIn(what string, data map[string]interface{}, org ciscosim.OrgState) {
	h.secretsSeen[org.SecretAccessKey] = true
	for k, v := range data {
		if s, ok := v.(string); (ok && h.secretsSeen[s]) || k == "client_secret" || k == "secret_access_key" {
			h.fail("%s returned a secret in %s", what, k)
		}
	}
}

func (h *history) checkNoSecretsLogged() {
	logs := h.env.logs.String()
	for _, org := range h.env.sim.State().Orgs {
		h.secretsSeen[org.SecretAccessKey] = true
	}
	for s := range h.secretsSeen {
		if s != "" && strings.Contains(logs, s) {
			h.fail("a secret reached the logs")
		}
	}
}

func parseTimeField(v interface{}) time.Time {
	s, _ := v.(string)
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

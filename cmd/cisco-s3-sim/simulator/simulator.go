// Package simulator is a Cisco Umbrella / Secure Access API simulator for
// the "Refresh S3 Bucket Key" API: the OAuth2 token endpoint and
// POST /admin/v2/iam/rotateKey, with Cisco's documented quirks, rate limits
// and injectable faults. Standard library only.
package simulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// APIKey is one Cisco API key and the organizations it may act on.
type APIKey struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	OrgIDs       []string `json:"org_ids"` // OrgIDs[0] is the key's default org
}

// Org is one organization.
type Org struct {
	ID string `json:"org_id"`
	// Disabled means the rotation API is not enabled: rotateKey answers 200
	// with the documented "Not found IAM key info" body.
	Disabled bool `json:"disabled"`
}

// Config sets up a simulator.
type Config struct {
	APIKeys      []APIKey      `json:"api_keys"`
	Orgs         []Org         `json:"orgs"`
	TokenTTL     time.Duration `json:"-"`
	NoRateLimits bool          `json:"no_rate_limits"`
	// Now is the clock for keyCreationDate and token expiry; nil means
	// time.Now. Rate limits always use real time.
	Now func() time.Time `json:"-"`
}

// Fault makes upcoming rotateKey calls fail.
type Fault struct {
	// Kind: 5xx, 429, error200, malformed, empty, delay, drop, expire_token.
	Kind    string `json:"kind"`
	Count   int    `json:"count"`    // calls it hits; 0 means 1
	OrgID   string `json:"org_id"`   // only calls for this org, if set
	Status  int    `json:"status"`   // for 5xx; default 503
	DelayMS int    `json:"delay_ms"` // for delay
}

// OrgState is the simulator's view of one organization.
type OrgState struct {
	OrgID           string `json:"org_id"`
	Disabled        bool   `json:"disabled"`
	CurrentKeyID    string `json:"current_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	OldKeyID        string `json:"old_key_id"`
	KeyCreationDate string `json:"key_creation_date"`
	// Rotations counts rotations, including ones whose reply was lost.
	Rotations int `json:"rotations"`
}

// State is a snapshot of the simulator.
type State struct {
	Orgs                map[string]OrgState `json:"orgs"`
	TokenCalls          int                 `json:"token_calls"`
	RotateCalls         int                 `json:"rotate_calls"`
	RateLimited         int                 `json:"rate_limited"`
	OrgHeaders          map[string]int      `json:"org_headers"`
	MaxConcurrentPerKey int                 `json:"max_concurrent_per_key"`
	// InFlight is the number of rotateKey calls being handled now,
	// including ones whose client has gone.
	InFlight int `json:"in_flight"`
}

type token struct {
	clientID string
	orgID    string
	expires  time.Time
}

// Server is the simulator; it implements http.Handler.
type Server struct {
	mu       sync.Mutex
	cfg      Config
	keys     map[string]APIKey
	orgs     map[string]*OrgState
	tokens   map[string]*token
	faults   []Fault
	calls    map[string][]time.Time // rotateKey calls per client id
	tokCalls map[string][]time.Time // token calls per client id
	inflight map[string]int
	state    State
	mux      *http.ServeMux
	now      func() time.Time
}

// New builds a simulator. Every enabled organization starts with a key, as
// if its first rotation had been done in Cisco's dashboard.
func New(cfg Config) *Server {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	s := &Server{
		cfg:      cfg,
		keys:     make(map[string]APIKey),
		orgs:     make(map[string]*OrgState),
		tokens:   make(map[string]*token),
		calls:    make(map[string][]time.Time),
		tokCalls: make(map[string][]time.Time),
		inflight: make(map[string]int),
		state:    State{OrgHeaders: make(map[string]int)},
		now:      time.Now,
	}
	if cfg.Now != nil {
		s.now = cfg.Now
	}
	for _, o := range cfg.Orgs {
		s.SetOrg(o)
	}
	for _, k := range cfg.APIKeys {
		s.AddAPIKey(k)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/auth/v2/token", s.handleToken)
	s.mux.HandleFunc("/admin/v2/iam/rotateKey", s.handleRotate)
	s.mux.HandleFunc("/_sim/faults", s.handleFaults)
	s.mux.HandleFunc("/_sim/orgs", s.handleOrgs)
	s.mux.HandleFunc("/_sim/keys", s.handleKeys)
	s.mux.HandleFunc("/_sim/tokens/expire", s.handleExpire)
	s.mux.HandleFunc("/_sim/state", s.handleState)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// AddAPIKey adds or replaces an API key; its unknown orgs are created enabled.
func (s *Server) AddAPIKey(k APIKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ClientID] = k
	for _, id := range k.OrgIDs {
		if _, ok := s.orgs[id]; !ok {
			s.setOrgLocked(Org{ID: id})
		}
	}
}

// SetOrg creates or updates an organization.
func (s *Server) SetOrg(o Org) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setOrgLocked(o)
}

func (s *Server) setOrgLocked(o Org) {
	st, ok := s.orgs[o.ID]
	if !ok {
		st = &OrgState{OrgID: o.ID}
		s.orgs[o.ID] = st
	}
	st.Disabled = o.Disabled
	if !o.Disabled && st.CurrentKeyID == "" {
		st.CurrentKeyID, st.SecretAccessKey = newKeyPair()
		st.KeyCreationDate = s.now().UTC().Format("2006-01-02T15:04:05")
	}
}

// InjectFault queues a fault for upcoming rotateKey calls.
func (s *Server) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// ExpireTokens expires every token issued so far.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.expires = time.Time{}
	}
}

// State returns a snapshot.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	for _, n := range s.inflight {
		st.InFlight += n
	}
	st.Orgs = make(map[string]OrgState, len(s.orgs))
	for id, o := range s.orgs {
		st.Orgs[id] = *o
	}
	st.OrgHeaders = make(map[string]int, len(s.state.OrgHeaders))
	for k, v := range s.state.OrgHeaders {
		st.OrgHeaders[k] = v
	}
	return st
}

// LoadConfig reads a JSON config file; "token_ttl" is a Go duration.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var file struct {
		Config
		TokenTTL string `json:"token_ttl"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg := file.Config
	if file.TokenTTL != "" {
		if cfg.TokenTTL, err = time.ParseDuration(file.TokenTTL); err != nil {
			return Config{}, fmt.Errorf("%s: token_ttl: %w", path, err)
		}
	}
	return cfg, nil
}

// Cisco's documented limits per API key.
var (
	adminLimits = []limit{{time.Second, 5}, {time.Minute, 14}, {30 * time.Minute, 350}}
	tokenLimits = []limit{{time.Minute, 20}}
)

type limit struct {
	window time.Duration
	calls  int
}

// allow records a call unless it exceeds a limit.
func allow(log map[string][]time.Time, key string, limits []limit, now time.Time) bool {
	calls := log[key]
	longest := limits[len(limits)-1].window
	i := 0
	for i < len(calls) && now.Sub(calls[i]) >= longest {
		i++
	}
	calls = calls[i:]
	for _, l := range limits {
		n := 0
		for _, c := range calls {
			if now.Sub(c) < l.window {
				n++
			}
		}
		if n >= l.calls {
			log[key] = calls
			return false
		}
	}
	log[key] = append(calls, now)
	return true
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]interface{}{"error": "method not allowed"})
		return
	}
	id, secret, ok := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.TokenCalls++
	key, known := s.keys[id]
	if !ok || !known || key.ClientSecret != secret {
		writeJSON(w, http.StatusUnauthorized, map[string]interface{}{"error": "invalid_client"})
		return
	}
	if !s.cfg.NoRateLimits && !allow(s.tokCalls, id, tokenLimits, time.Now()) {
		s.state.RateLimited++
		writeJSON(w, http.StatusTooManyRequests, map[string]interface{}{"status": 429, "error": "Too Many Requests"})
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "unsupported_grant_type"})
		return
	}
	org := ""
	if len(key.OrgIDs) > 0 {
		org = key.OrgIDs[0]
	}
	if h := r.Header.Get("X-Umbrella-OrgId"); h != "" {
		s.state.OrgHeaders[h]++
		allowed := false
		for _, o := range key.OrgIDs {
			allowed = allowed || o == h
		}
		if !allowed {
			writeJSON(w, http.StatusForbidden, map[string]interface{}{"error": "access_denied"})
			return
		}
		org = h
	}
	tok := randomString(32)
	s.tokens[tok] = &token{clientID: id, orgID: org, expires: s.now().Add(s.cfg.TokenTTL)}
	writeJSON(w, http.StatusOK, map[string]interface{}{
		"access_token": tok, "token_type": "bearer",
		"expires_in": int(s.cfg.TokenTTL / time.Second), "scope": "admin.iam:write",
	})
}

func errorBody(status int, msg string) map[string]interface{} {
	return map[string]interface{}{
		"status": status, "error": msg, "path": "/iam/rotate-key",
		"timestamp": time.Now().UTC().Format("2006-01-02T15:04:05"),
	}
}

func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody(405, "Method Not Allowed"))
		return
	}
	s.mu.Lock()
	s.state.RotateCalls++
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok := s.tokens[bearer]
	if !ok || tok == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, errorBody(401, "Authorization token is invalid."))
		return
	}
	if !s.now().Before(tok.expires) {
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "invalid_request"})
		return
	}
	if !s.cfg.NoRateLimits && !allow(s.calls, tok.clientID, adminLimits, time.Now()) {
		s.state.RateLimited++
		s.mu.Unlock()
		writeJSON(w, http.StatusTooManyRequests, map[string]interface{}{"status": 429, "error": "Too Many Requests"})
		return
	}
	s.inflight[tok.clientID]++
	if n := s.inflight[tok.clientID]; n > s.state.MaxConcurrentPerKey {
		s.state.MaxConcurrentPerKey = n
	}
	fault := s.takeFault(tok.orgID)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight[tok.clientID]--
		s.mu.Unlock()
	}()

	switch fault.Kind {
	case "5xx":
		status := fault.Status
		if status < 500 || status > 599 {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]interface{}{"status": status, "error": http.StatusText(status)})
		return
	case "429":
		writeJSON(w, http.StatusTooManyRequests, map[string]interface{}{"status": 429, "error": "Too Many Requests"})
		return
	case "error200":
		writeJSON(w, http.StatusOK, map[string]interface{}{"status": 200, "error": "Internal error"})
		return
	case "expire_token":
		writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "invalid_request"})
		return
	case "delay":
		select {
		case <-time.After(time.Duration(fault.DelayMS) * time.Millisecond):
		case <-r.Context().Done():
		}
	}

	s.mu.Lock()
	org := s.orgs[tok.orgID]
	if org == nil || org.Disabled {
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]interface{}{
			"timestamp": "2025-05-15T04:51:11", "status": 200,
			"error": "Not found IAM key info for orgId: " + tok.orgID, "path": "/iam/rotate-key",
		})
		return
	}
	org.OldKeyID = org.CurrentKeyID
	org.CurrentKeyID, org.SecretAccessKey = newKeyPair()
	org.KeyCreationDate = s.now().UTC().Format("2006-01-02T15:04:05")
	org.Rotations++
	reply := map[string]interface{}{
		"oldKeyId": org.OldKeyID, "currentKeyId": org.CurrentKeyID,
		"secretAccessKey": org.SecretAccessKey, "keyCreationDate": org.KeyCreationDate,
	}
	s.mu.Unlock()

	switch fault.Kind {
	case "malformed":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"oldKeyId":"AKIA`))
	case "empty":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
	case "drop":
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	default:
		writeJSON(w, http.StatusOK, reply)
	}
}

// takeFault returns the next fault for a call on org, or a zero Fault.
func (s *Server) takeFault(org string) Fault {
	for i, f := range s.faults {
		if f.OrgID != "" && f.OrgID != org {
			continue
		}
		s.faults[i].Count--
		if s.faults[i].Count <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return f
	}
	return Fault{}
}

func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil || !validFault(f.Kind) {
			writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "want a fault: {\"kind\":\"5xx|429|error200|malformed|empty|delay|drop|expire_token\",\"count\":1}"})
			return
		}
		s.InjectFault(f)
		writeJSON(w, http.StatusOK, map[string]interface{}{"queued": f})
	case http.MethodDelete:
		s.mu.Lock()
		s.faults = nil
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]interface{}{"error": "POST or DELETE"})
	}
}

func validFault(kind string) bool {
	switch kind {
	case "5xx", "429", "error200", "malformed", "empty", "delay", "drop", "expire_token":
		return true
	}
	return false
}

func (s *Server) handleOrgs(w http.ResponseWriter, r *http.Request) {
	var o Org
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&o) != nil || o.ID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "POST {\"org_id\":\"1234567\",\"disabled\":false}"})
		return
	}
	s.SetOrg(o)
	writeJSON(w, http.StatusOK, map[string]interface{}{"org_id": o.ID})
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	var k APIKey
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&k) != nil || k.ClientID == "" || k.ClientSecret == "" {
		writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "POST {\"client_id\":\"...\",\"client_secret\":\"...\",\"org_ids\":[\"1234567\"]}"})
		return
	}
	s.AddAPIKey(k)
	writeJSON(w, http.StatusOK, map[string]interface{}{"client_id": k.ClientID})
}

func (s *Server) handleExpire(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]interface{}{"error": "POST"})
		return
	}
	s.ExpireTokens()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleState(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.State())
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

const keyIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"

// newKeyPair returns an AWS-shaped access key id and secret.
func newKeyPair() (string, string) {
	return "AKIA" + randomFrom(keyIDAlphabet, 16), randomFrom(secretAlphabet, 40)
}

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

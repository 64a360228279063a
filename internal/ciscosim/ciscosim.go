// Package ciscosim is a Cisco Umbrella / Secure Access API simulator for
// the "Refresh S3 Bucket Key" API: the OAuth2 token endpoint and
// POST /admin/v2/iam/rotateKey, with Cisco's documented quirks, rate limits
// and injectable faults. The same server also plays AWS for the keys Cisco
// issues: STS GetCallerIdentity and a read-only, path-style S3 holding each
// organization's log files, both checking AWS Signature Version 4 with
// aws-sdk-go-v2's signer, so a test can prove that an issued key works.
// It is a real HTTP server: tests run it with httptest, and
// cmd/cisco-s3-sim serves it.
package ciscosim

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// APIKey is one Cisco API key and the organizations it may act on.
type APIKey struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	OrgIDs       []string `json:"org_ids"` // OrgIDs[0] is the key's default org
	// Scopes is the token's scope list; empty means "admin.iam:write".
	Scopes string `json:"scopes,omitempty"`
}

// Org is one organization.
type Org struct {
	ID string `json:"org_id"`
	// Disabled means the rotation API is not enabled: rotateKey answers 200
	// with the documented "Not found IAM key info" body.
	Disabled bool `json:"disabled"`
	// Region is where the organization's bucket lives; empty means
	// us-east-1.
	Region string `json:"region,omitempty"`
}

// Config sets up a simulator.
type Config struct {
	APIKeys      []APIKey      `json:"api_keys"`
	Orgs         []Org         `json:"orgs"`
	TokenTTL     time.Duration `json:"-"`
	NoRateLimits bool          `json:"no_rate_limits"`
	// Now is the clock for keyCreationDate and token expiry; nil means
	// time.Now. Rate limits and key propagation always use real time.
	Now func() time.Time `json:"-"`
	// PropagationDelay is how long after rotateKey or a dashboard refresh
	// the new key starts to work in AWS (STS and S3): real AWS takes a few
	// seconds. Keys that exist when New returns work at once. In a JSON
	// config it is "propagation_delay", a Go duration such as "5s".
	PropagationDelay time.Duration `json:"-"`
}

// Fault makes upcoming rotateKey calls, or upcoming STS calls, fail.
type Fault struct {
	// Kind, for rotateKey: 5xx, 429, error200, malformed, empty, delay,
	// drop, expire_token, old_date (success with a keyCreationDate 200
	// days in the past). For STS: sts_5xx, sts_throttling, sts_drop,
	// sts_delay, sts_reject (InvalidClientTokenId for any key). A fault is only ever taken by the calls it is for.
	Kind  string `json:"kind"`
	Count int    `json:"count"` // calls it hits; 0 means 1
	// OrgID: only calls for this org, if set. An STS call is for the org
	// whose current key id signed it.
	OrgID   string `json:"org_id"`
	Status  int    `json:"status"`   // for 5xx and sts_5xx; default 503
	DelayMS int    `json:"delay_ms"` // for delay and sts_delay
}

// OrgState is the simulator's view of one organization.
type OrgState struct {
	OrgID           string `json:"org_id"`
	Disabled        bool   `json:"disabled"`
	CurrentKeyID    string `json:"current_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	OldKeyID        string `json:"old_key_id"`
	KeyCreationDate string `json:"key_creation_date"`
	// Rotations counts rotations through the API, including ones whose
	// reply was lost. Dashboard refreshes are not counted.
	Rotations int `json:"rotations"`
	// Failures counts answers that gave the caller no new key and that a
	// caller must not simply repeat: a refused token request naming this
	// org, and rotateKey faults other than 429, expire_token, delay and
	// old_date. A lost reply counts in Rotations too.
	Failures int `json:"failures"`
	// Refreshes counts keys refreshed in the dashboard (RefreshKey).
	Refreshes int `json:"refreshes"`
	// KeyIssuedAt is when the current key was issued, in real time.
	KeyIssuedAt time.Time `json:"key_issued_at"`
	// KeyUsableAt is when AWS starts to accept the current key:
	// KeyIssuedAt plus Config.PropagationDelay.
	KeyUsableAt time.Time `json:"key_usable_at"`
	AWSIdentity
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
	// PendingFaults is the number of queued fault uses not yet taken.
	PendingFaults int `json:"pending_faults"`
	// STSCalls and S3Calls count the requests served as AWS STS and S3.
	STSCalls int `json:"sts_calls"`
	S3Calls  int `json:"s3_calls"`
	// STSAccepted holds every key id that STS ever accepted.
	STSAccepted map[string]bool `json:"sts_accepted"`
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
	accepted map[string]bool // key ids STS accepted
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
		accepted: make(map[string]bool),
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
	s.mux.HandleFunc("/_sim/refresh", s.handleRefresh)
	s.mux.HandleFunc("/_sim/state", s.handleState)
	return s
}

// ServeHTTP serves Cisco's and the test paths, and AWS on the same
// address: STS at "/" and S3 at "/cisco-managed-<region>/...". S3 paths go
// around the mux, which would redirect object keys holding "//" or "..".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/"+bucketPrefix):
		s.handleS3(w, r)
	case r.URL.Path == "/":
		s.handleRoot(w, r)
	default:
		s.mux.ServeHTTP(w, r)
	}
}

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

// SetOrg creates or updates an organization; every field is set, so an
// empty Region moves its bucket to us-east-1.
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
	st.AWSIdentity = newAWSIdentity(o.ID, o.Region)
	if !o.Disabled && st.CurrentKeyID == "" {
		// Set up as if done in the dashboard long ago: already usable.
		s.issueKeyLocked(st, 0)
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
	for _, f := range s.faults {
		st.PendingFaults += f.Count
	}
	st.Orgs = make(map[string]OrgState, len(s.orgs))
	for id, o := range s.orgs {
		st.Orgs[id] = *o
	}
	st.STSAccepted = make(map[string]bool, len(s.accepted))
	for id := range s.accepted {
		st.STSAccepted[id] = true
	}
	st.OrgHeaders = make(map[string]int, len(s.state.OrgHeaders))
	for k, v := range s.state.OrgHeaders {
		st.OrgHeaders[k] = v
	}
	return st
}

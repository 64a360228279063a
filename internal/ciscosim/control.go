package ciscosim

import (
	"encoding/json"
	"net/http"
	"time"
)

// The test endpoints under /_sim/ and their Go equivalents.

// InjectFault queues a fault for upcoming rotateKey calls, or for upcoming
// STS calls if its kind starts with "sts_".
func (s *Server) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// RefreshKey replaces an organization's key as a refresh in Cisco's
// dashboard does, and returns the new state; false for an unknown or
// disabled organization.
func (s *Server) RefreshKey(orgID string) (OrgState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	org := s.orgs[orgID]
	if org == nil || org.Disabled {
		return OrgState{}, false
	}
	s.replaceKeyLocked(org)
	org.Refreshes++
	return *org, true
}

// ExpireTokens expires every token issued so far.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.expires = time.Time{}
	}
}

func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil || !validFault(f.Kind) {
			writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "want a fault: {\"kind\":\"5xx|429|error200|malformed|empty|delay|drop|expire_token|old_date|sts_5xx|sts_throttling|sts_drop|sts_delay|sts_reject\",\"count\":1}"})
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
	case "5xx", "429", "error200", "malformed", "empty", "delay", "drop", "expire_token", "old_date",
		"sts_5xx", "sts_throttling", "sts_drop", "sts_delay", "sts_reject":
		return true
	}
	return false
}

func (s *Server) handleOrgs(w http.ResponseWriter, r *http.Request) {
	var o Org
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&o) != nil || o.ID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "POST {\"org_id\":\"1234567\",\"disabled\":false,\"region\":\"us-east-1\"}"})
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

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	var o Org
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&o) != nil || o.ID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]interface{}{"error": "POST {\"org_id\":\"1234567\"}"})
		return
	}
	st, ok := s.RefreshKey(o.ID)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]interface{}{"error": "no enabled organization " + o.ID})
		return
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{
		"accessKeyId": st.CurrentKeyID, "secretAccessKey": st.SecretAccessKey, "keyCreationDate": st.KeyCreationDate,
	})
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

package ciscosim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Cisco's two endpoints: the token and rotateKey.

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
		s.countFailureLocked(r.Header.Get("X-Umbrella-OrgId"))
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
			s.countFailureLocked(h)
			writeJSON(w, http.StatusForbidden, map[string]interface{}{"error": "access_denied"})
			return
		}
		org = h
	}
	scopes := key.Scopes
	if scopes == "" {
		scopes = "admin.iam:write"
	}
	tok := randomString(32)
	s.tokens[tok] = &token{clientID: id, orgID: org, expires: s.now().Add(s.cfg.TokenTTL)}
	writeJSON(w, http.StatusOK, map[string]interface{}{
		"access_token": tok, "token_type": "bearer",
		"expires_in": int(s.cfg.TokenTTL / time.Second), "scope": scopes,
	})
}

func errorBody(status int, msg string) map[string]interface{} {
	return map[string]interface{}{
		"status": status, "error": msg, "path": "/iam/rotate-key",
		"timestamp": time.Now().UTC().Format(ciscoDate),
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
	fault := s.takeFault(tok.orgID, false)
	if fault.Kind == "5xx" || fault.Kind == "error200" {
		s.countFailureLocked(tok.orgID)
	}
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
		s.countFailureLocked(tok.orgID)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]interface{}{
			"timestamp": "2025-05-15T04:51:11", "status": 200,
			"error": "Not found IAM key info for orgId: " + tok.orgID, "path": "/iam/rotate-key",
		})
		return
	}
	s.replaceKeyLocked(org)
	if fault.Kind == "old_date" {
		// Cisco's date for a key it just made, 200 days in the past.
		org.KeyCreationDate = s.now().UTC().AddDate(0, 0, -200).Format(ciscoDate)
	}
	org.Rotations++
	if fault.Kind == "malformed" || fault.Kind == "empty" || fault.Kind == "drop" {
		org.Failures++ // the reply is lost
	}
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
		dropConnection(w)
	default:
		writeJSON(w, http.StatusOK, reply)
	}
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// countFailureLocked counts a failed answer for org, if it is known.
func (s *Server) countFailureLocked(org string) {
	if o := s.orgs[org]; o != nil {
		o.Failures++
	}
}

// takeFault returns the next fault for a call on org, or a zero Fault: an
// STS fault for an STS call, a rotateKey fault otherwise.
func (s *Server) takeFault(org string, sts bool) Fault {
	for i, f := range s.faults {
		if f.OrgID != "" && f.OrgID != org || isSTSFault(f.Kind) != sts {
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

func isSTSFault(kind string) bool { return strings.HasPrefix(kind, "sts_") }

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

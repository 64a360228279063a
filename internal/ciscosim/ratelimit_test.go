package ciscosim

import (
	"net/http"
	"testing"
	"time"
)

func TestRateLimits(t *testing.T) {
	t.Run("admin 5 per second", func(t *testing.T) {
		s, srv := newSim(t, Config{})
		tok := getToken(t, srv.URL)
		var statuses []int
		for i := 0; i < 6; i++ {
			r := rotate(t, srv.URL, tok)
			statuses = append(statuses, r.status)
			if r.status == 429 && r.header.Get("Retry-After") != "" {
				t.Fatal("Cisco sends no Retry-After")
			}
		}
		if statuses[4] != 200 || statuses[5] != 429 || s.State().RateLimited != 1 || s.State().Orgs[org].Rotations != 5 {
			t.Fatalf("statuses %v state %+v", statuses, s.State())
		}
	})
	t.Run("token 20 per minute", func(t *testing.T) {
		_, srv := newSim(t, Config{})
		for i := 0; i < 20; i++ {
			if r := tokenRequest(t, srv.URL, clientID, secret, ""); r.status != 200 {
				t.Fatalf("token %d: %d", i, r.status)
			}
		}
		if r := tokenRequest(t, srv.URL, clientID, secret, ""); r.status != 429 {
			t.Fatalf("21st token: %d", r.status)
		}
	})
	t.Run("switched off", func(t *testing.T) {
		_, srv := newSim(t, Config{NoRateLimits: true})
		tok := getToken(t, srv.URL)
		for i := 0; i < 20; i++ {
			if r := rotate(t, srv.URL, tok); r.status != 200 {
				t.Fatalf("call %d: %d", i, r.status)
			}
		}
	})
	t.Run("per minute window", func(t *testing.T) {
		log := map[string][]time.Time{}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 14; i++ {
			if !allow(log, "k", adminLimits, now.Add(time.Duration(i)*time.Second)) {
				t.Fatalf("call %d refused", i)
			}
		}
		if allow(log, "k", adminLimits, now.Add(30*time.Second)) {
			t.Fatal("15th call within a minute allowed")
		}
		if !allow(log, "k", adminLimits, now.Add(61*time.Second)) {
			t.Fatal("call after the window refused")
		}
	})
}

func TestMaxConcurrentPerKey(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	tok := getToken(t, srv.URL)
	s.InjectFault(Fault{Kind: "delay", DelayMS: 200, Count: 2})
	done := make(chan struct{})
	for i := 0; i < 2; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/admin/v2/iam/rotateKey", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	<-done
	<-done
	if got := s.State().MaxConcurrentPerKey; got != 2 {
		t.Fatalf("max concurrent = %d, want 2", got)
	}
}

package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// benchBackend is a backend on counting in-memory storage, for benchmarks.
func benchBackend(b *testing.B, storage *testStorage, now func() time.Time) *backend {
	b.Helper()
	conf := &logical.BackendConfig{System: &logical.StaticSystemView{}, StorageView: storage}
	be := newBackend(conf)
	be.now = now
	if err := be.Setup(context.Background(), conf); err != nil {
		b.Fatal(err)
	}
	return be
}

// BenchmarkCredsRead is the creds/<name> read handler, through the
// framework's routing, answered from memory.
func BenchmarkCredsRead(b *testing.B) {
	storage := newTestStorage()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	seedOrganizations(b, storage, 1, now)
	be := benchBackend(b, storage, func() time.Time { return now })
	benchRequest(b, be, storage, &logical.Request{Operation: logical.ReadOperation, Path: "creds/org-00000", Storage: storage})
}

// benchRequest times one request after a warm-up run, and reports the
// storage reads (Get and List) it makes.
func benchRequest(b *testing.B, be *backend, storage *testStorage, req *logical.Request) {
	b.Helper()
	if resp, err := be.HandleRequest(context.Background(), req); err != nil || (resp != nil && resp.IsError()) {
		b.Fatal(resp, err)
	}
	reads := storage.gets.Load() + storage.lists.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := be.HandleRequest(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(storage.gets.Load()+storage.lists.Load()-reads)/float64(b.N), "storage-reads/op")
}

// BenchmarkCredsReadBaseline is the floor a storage-backed read would pay:
// one raw storage Get and a JSON decode of the same entry.
func BenchmarkCredsReadBaseline(b *testing.B) {
	storage := newTestStorage()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	seedOrganizations(b, storage, 1, now)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		entry, err := storage.Get(context.Background(), keyPrefix+"org-00000")
		if err != nil {
			b.Fatal(err)
		}
		var k keyState
		if err := json.Unmarshal(entry.Value, &k); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSim starts a simulator without rate limits, for rotation costs.
func benchSim(b *testing.B, orgs int) (*ciscosim.Server, *httptest.Server) {
	b.Helper()
	cfg := ciscosim.Config{NoRateLimits: true}
	for i := 0; i < orgs; i++ {
		cfg.APIKeys = append(cfg.APIKeys, ciscosim.APIKey{ClientID: fmt.Sprintf("client-%05d", i), ClientSecret: "secret", OrgIDs: []string{fmt.Sprint(1000000 + i)}})
	}
	sim := ciscosim.New(cfg)
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	return sim, srv
}

// BenchmarkRotate is the rotate/<name> path: lock, WAL, Cisco call, store,
// cache and queue update.
func BenchmarkRotate(b *testing.B) {
	_, srv := benchSim(b, 1)
	storage := newTestStorage()
	be := benchBackend(b, storage, func() time.Time { return time.Now().UTC() })
	be.limiter = cisco.NewLimiter(cisco.WithLimits())
	cfg := &orgConfig{Provider: providerUmbrella, ClientID: "client-00000", ClientSecret: "secret",
		APIURL: srv.URL + "/admin/v2", TokenURL: srv.URL + "/auth/v2/token", RotationPeriod: defaultRotationPeriod}
	if err := seedJSON(context.Background(), storage, configPrefix+"acme", cfg); err != nil {
		b.Fatal(err)
	}
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "rotate/acme", Storage: storage}
	if resp, err := be.HandleRequest(context.Background(), req); err != nil || resp.IsError() {
		b.Fatal(resp, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if resp, err := be.HandleRequest(context.Background(), req); err != nil || resp.IsError() {
			b.Fatal(resp, err)
		}
	}
}

// BenchmarkRotateBaseline is a direct client call to the simulator with a
// cached token: the cost of Cisco's side and HTTP alone.
func BenchmarkRotateBaseline(b *testing.B) {
	_, srv := benchSim(b, 1)
	c := cisco.NewClient(cisco.Settings{ClientID: "client-00000", ClientSecret: "secret",
		APIURL: srv.URL + "/admin/v2", TokenURL: srv.URL + "/auth/v2/token"})
	if _, err := c.RotateKey(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.RotateKey(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSchedulerMemory10k loads 10,000 organizations and reports the
// heap the backend holds for them (cache and queue) per organization.
func BenchmarkSchedulerMemory10k(b *testing.B) {
	const n = 10000
	storage := newTestStorage()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	seedOrganizations(b, storage, n, now)
	var total float64
	var keep []*backend
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		be := benchBackend(b, storage, func() time.Time { return now })
		if err := be.ensureLoaded(context.Background(), storage); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		total += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		keep = append(keep, be)
		if be.sched.queueLen() != n {
			b.Fatalf("queued %d", be.sched.queueLen())
		}
	}
	runtime.KeepAlive(keep)
	b.ReportMetric(total/float64(b.N)/n, "heap-bytes/org")
}

// BenchmarkBulkDrain1000 makes 1,000 organizations due at once, as after
// an outage, against a simulator that enforces Cisco's rate limits, and
// drains them with the concurrency cap.
func BenchmarkBulkDrain1000(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		cfg := ciscosim.Config{}
		for j := 0; j < n; j++ {
			cfg.APIKeys = append(cfg.APIKeys, ciscosim.APIKey{ClientID: fmt.Sprintf("client-%05d", j), ClientSecret: "secret", OrgIDs: []string{fmt.Sprint(1000000 + j)}})
		}
		sim := ciscosim.New(cfg)
		srv := httptest.NewServer(sim)
		storage := newTestStorage()
		start := time.Now().UTC().Add(-61 * 24 * time.Hour)
		for j := 0; j < n; j++ {
			name := fmt.Sprintf("org-%05d", j)
			c := &orgConfig{Provider: providerUmbrella, ClientID: fmt.Sprintf("client-%05d", j), ClientSecret: "secret",
				APIURL: srv.URL + "/admin/v2", TokenURL: srv.URL + "/auth/v2/token", RotationPeriod: defaultRotationPeriod}
			k := map[string]interface{}{"access_key_id": fmt.Sprintf("AKIA%016d", j), "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
				"key_creation_date": start, "last_vault_rotation": start, "version": 1}
			if err := seedJSON(context.Background(), storage, configPrefix+name, c); err != nil {
				b.Fatal(err)
			}
			if err := seedJSON(context.Background(), storage, keyPrefix+name, k); err != nil {
				b.Fatal(err)
			}
		}
		be := benchBackend(b, storage, func() time.Time { return time.Now().UTC() })
		req := &logical.Request{Operation: logical.RollbackOperation, Storage: storage}
		began := time.Now()
		ticks := 0
		for ; ticks < 20; ticks++ {
			if _, err := be.HandleRequest(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			if at, ok := be.sched.earliest(); !ok || at.After(time.Now().UTC()) {
				break
			}
		}
		drain := time.Since(began)
		st := sim.State()
		rotated := 0
		for _, o := range st.Orgs {
			rotated += o.Rotations
		}
		srv.Close()
		if rotated != n || st.RateLimited != 0 || st.MaxConcurrentPerKey > 1 {
			b.Fatalf("rotated %d of %d, %d rate-limited, %d concurrent per key", rotated, n, st.RateLimited, st.MaxConcurrentPerKey)
		}
		b.ReportMetric(float64(drain.Milliseconds()), "drain-ms")
		b.ReportMetric(float64(st.RateLimited), "429s")
		b.ReportMetric(float64(ticks+1), "ticks")
	}
}

// BenchmarkIdleTick10k is the periodic tick with 10,000 organizations and
// none due: one look at the queue, no storage.
func BenchmarkIdleTick10k(b *testing.B) {
	storage := newTestStorage()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	seedOrganizations(b, storage, 10000, now)
	be := benchBackend(b, storage, func() time.Time { return now })
	benchRequest(b, be, storage, &logical.Request{Operation: logical.RollbackOperation, Storage: storage})
}

package backend

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

func TestRotate_CredsEqualSimulatorKey(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"data_path": "s3://cisco-managed-eu-central-1/1234567_abc"})
	before := env.simOrg()

	resp := env.mustRotate("acme")
	org := env.simOrg()
	if org.CurrentKeyID == before.CurrentKeyID {
		t.Fatal("the simulator did not rotate")
	}
	if resp.Data["access_key_id"] != org.CurrentKeyID || resp.Data["old_access_key_id"] != before.CurrentKeyID || resp.Data["version"] != 1 {
		t.Fatalf("rotate response %v", resp.Data)
	}
	for k, v := range resp.Data {
		if v == org.SecretAccessKey {
			t.Fatalf("rotate returned the secret in %s", k)
		}
	}
	creds := env.assertServesSimKey("acme")
	if creds.Secret != nil {
		t.Fatal("creds must have no lease")
	}
	wantCreated, _ := cisco.ParseKeyCreationDate(org.KeyCreationDate)
	if creds.Data["key_creation_date"] != wantCreated.Format(time.RFC3339) ||
		creds.Data["expires_at"] != wantCreated.Add(keyLifetime).Format(time.RFC3339) ||
		creds.Data["bucket"] != "cisco-managed-eu-central-1" || creds.Data["bucket_arn"] != "arn:aws:s3:::cisco-managed-eu-central-1" ||
		creds.Data["key_state"] != "current" {
		t.Fatalf("creds %v", creds.Data)
	}

	env.mustRotate("acme")
	creds = env.assertServesSimKey("acme")
	if creds.Data["version"] != 2 || creds.Data["old_access_key_id"] != org.CurrentKeyID {
		t.Fatalf("second rotation: %v", creds.Data)
	}
	env.assertNoSecretsLogged(org.SecretAccessKey)
}

func TestRotate_NotConfigured(t *testing.T) {
	env := newTestEnv(t)
	resp, err := env.rotate("nobody")
	mustBadRequest(t, resp, err, "write config/nobody first")
}

func TestRotate_NotFoundIAMKeyInfoExplainsFix(t *testing.T) {
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys:      []ciscosim.APIKey{{ClientID: testClientID, ClientSecret: testClientSecret, OrgIDs: []string{testOrgID}}},
		Orgs:         []ciscosim.Org{{ID: testOrgID, Disabled: true}},
		NoRateLimits: true,
	}))
	env.configure("acme", nil)
	resp, err := env.rotate("acme")
	mustBadRequest(t, resp, err, "must be done once in Cisco's dashboard")
	if !strings.Contains(resp.Error().Error(), "Not found IAM key info") {
		t.Fatalf("Cisco's text is missing: %v", resp.Error())
	}
	cfg := env.mustRead("config/acme")
	if cfg.Data["consecutive_failures"] != 1 || !strings.Contains(cfg.Data["last_rotation_error"].(string), "Not found IAM key info") {
		t.Fatalf("status after failure: %v", cfg.Data)
	}
	resp, err = env.read("creds/acme")
	mustBadRequest(t, resp, err, "import/acme")
}

// TestRotate_FailureModes injects each Cisco failure and checks that the
// served key is the last one Cisco issued successfully, or is marked stale.
func TestRotate_FailureModes(t *testing.T) {
	cases := map[string]struct {
		fault         ciscosim.Fault
		wantStatus    int // 0: success
		wantStale     bool
		wantRotations int // rotations the simulator made for the failing call
		wantMessage   string
	}{
		"200 with error body": {fault: ciscosim.Fault{Kind: "error200"}, wantStatus: http.StatusBadGateway, wantMessage: "Internal error"},
		"expired token as 400 invalid_request": {
			fault: ciscosim.Fault{Kind: "expire_token"}, wantRotations: 1,
		},
		"429 then success":  {fault: ciscosim.Fault{Kind: "429"}, wantRotations: 1},
		"503":               {fault: ciscosim.Fault{Kind: "5xx", Status: 503}, wantStatus: http.StatusBadGateway, wantStale: true, wantMessage: "outcome unknown"},
		"malformed 200":     {fault: ciscosim.Fault{Kind: "malformed"}, wantStatus: http.StatusBadGateway, wantStale: true, wantRotations: 1, wantMessage: "unreadable reply"},
		"empty 200":         {fault: ciscosim.Fault{Kind: "empty"}, wantStatus: http.StatusBadGateway, wantStale: true, wantRotations: 1, wantMessage: "outcome unknown"},
		"dropped after rot": {fault: ciscosim.Fault{Kind: "drop"}, wantStatus: http.StatusBadGateway, wantStale: true, wantRotations: 1, wantMessage: "outcome unknown"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", nil)
			env.mustRotate("acme")
			good := env.simOrg()

			env.injectFault(tc.fault)
			resp, err := env.rotate("acme")
			after := env.simOrg()
			if got := after.Rotations - good.Rotations; got != tc.wantRotations {
				t.Fatalf("simulator rotated %d times, want %d", got, tc.wantRotations)
			}
			creds := env.mustRead("creds/acme")
			if tc.wantStatus == 0 {
				mustOK(t, resp, err)
				env.assertServesSimKey("acme")
				if creds.Data["version"] != 2 {
					t.Fatalf("version = %v", creds.Data["version"])
				}
				return
			}
			var coded logical.HTTPCodedError
			if !errors.As(err, &coded) || coded.Code() != tc.wantStatus {
				t.Fatalf("want HTTP %d, got %v / %v", tc.wantStatus, resp, err)
			}
			if !strings.Contains(err.Error(), tc.wantMessage) {
				t.Fatalf("error %q lacks %q", err, tc.wantMessage)
			}
			// Never a key other than the last one Cisco issued successfully.
			if creds.Data["access_key_id"] != good.CurrentKeyID || creds.Data["version"] != 1 {
				t.Fatalf("served key changed after a failure: %v", creds.Data["access_key_id"])
			}
			wantState := "current"
			if tc.wantStale {
				wantState = "stale"
				if len(creds.Warnings) == 0 {
					t.Fatal("a stale key is served without a warning")
				}
				if !env.b.sched.queued("acme") {
					t.Fatal("a stale key has no recovery scheduled")
				}
			}
			if creds.Data["key_state"] != wantState {
				t.Fatalf("key_state = %v, want %s", creds.Data["key_state"], wantState)
			}
			// The next rotation recovers.
			env.mustRotate("acme")
			creds = env.assertServesSimKey("acme")
			if creds.Data["key_state"] != "current" || len(creds.Warnings) != 0 {
				t.Fatalf("after recovery: %v %v", creds.Data["key_state"], creds.Warnings)
			}
			env.assertNoSecretsLogged(good.SecretAccessKey)
		})
	}
}

func TestRotate_ExpiredTokenGivesExactlyOneRotation(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	before := env.sim.State()
	env.sim.ExpireTokens()
	env.mustRotate("acme")
	after := env.sim.State()
	if got := after.Orgs[testOrgID].Rotations - before.Orgs[testOrgID].Rotations; got != 1 {
		t.Fatalf("rotations = %d, want 1", got)
	}
	if got := after.TokenCalls - before.TokenCalls; got != 1 {
		t.Fatalf("token calls = %d, want exactly one fresh token", got)
	}
	env.assertServesSimKey("acme")
}

func TestRotate_TokenIsCachedUntilConfigChanges(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.mustRotate("acme")
	if got := env.sim.State().TokenCalls; got != 1 {
		t.Fatalf("token calls = %d, want 1 reused token", got)
	}
	env.mustWrite("config/acme", map[string]interface{}{"org_id": testOrgID})
	env.mustRotate("acme")
	if got := env.sim.State().TokenCalls; got != 2 {
		t.Fatalf("token calls = %d, want a new token after the config change", got)
	}
}

func TestRotate_BadCredentials(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"client_secret": "wrong-secret-value", "verify_connection": false})
	_, err := env.rotate("acme")
	if err == nil || !strings.Contains(err.Error(), "rejected the API key") || strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatalf("err = %v", err)
	}
	if env.simOrg().Rotations != 0 {
		t.Fatal("rotated with bad credentials")
	}
	if strings.Contains(env.logs.String(), "wrong-secret-value") {
		t.Fatal("the client secret was logged")
	}
}

func TestRotate_OrgHeaderSelectsOrganization(t *testing.T) {
	env := newTestEnv(t, withSimConfig(ciscosim.Config{
		APIKeys:      []ciscosim.APIKey{{ClientID: "msp", ClientSecret: testClientSecret, OrgIDs: []string{"1111111", testOrgID}}},
		NoRateLimits: true,
	}))
	env.configure("child", map[string]interface{}{"client_id": "msp", "org_id": testOrgID})
	env.mustRotate("child")
	st := env.sim.State()
	if st.OrgHeaders[testOrgID] != 1 {
		t.Fatalf("X-Umbrella-OrgId seen: %v", st.OrgHeaders)
	}
	if st.Orgs[testOrgID].Rotations != 1 || st.Orgs["1111111"].Rotations != 0 {
		t.Fatalf("rotated the wrong organization: %+v", st.Orgs)
	}
	env.assertServesSimKey("child")

	// Without org_id the key's default organization is rotated.
	env.configure("parent", map[string]interface{}{"client_id": "msp"})
	env.mustRotate("parent")
	if env.sim.State().Orgs["1111111"].Rotations != 1 {
		t.Fatal("default organization not rotated")
	}
}

func TestRotate_StoragePutFailures(t *testing.T) {
	t.Run("fails once, then the retry stores the key", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		env.storage.setFailPut(failKeyPuts(1))
		env.mustRotate("acme")
		env.assertServesSimKey("acme")
	})
	t.Run("always fails after Cisco succeeded: key lost, stale, recovery scheduled", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		env.mustRotate("acme")
		env.storage.setFailPut(failKeyPuts(-1))
		_, err := env.rotate("acme")
		issued := env.simOrg()
		if err == nil || !strings.Contains(err.Error(), "is lost") || !strings.Contains(err.Error(), issued.CurrentKeyID) {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), issued.SecretAccessKey) || strings.Contains(env.logs.String(), issued.SecretAccessKey) {
			t.Fatal("the lost secret leaked")
		}
		if !strings.Contains(env.logs.String(), issued.CurrentKeyID) {
			t.Fatal("the lost key id was not logged")
		}
		creds := env.mustRead("creds/acme")
		if creds.Data["key_state"] != "stale" {
			t.Fatalf("key_state = %v", creds.Data["key_state"])
		}
		// Storage heals; the scheduled recovery rotates and stores.
		env.storage.setFailPut(nil)
		env.clock.Advance(2 * time.Minute)
		env.tick()
		env.assertServesSimKey("acme")
		if ids, _ := env.storage.List(context.Background(), "wal/"); len(ids) != 0 {
			t.Fatalf("WAL entries left: %v", ids)
		}
	})
	t.Run("WAL write fails: Cisco is not called", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure("acme", nil)
		env.storage.setFailPut(func(key string) bool { return strings.HasPrefix(key, "wal/") })
		_, err := env.rotate("acme")
		if err == nil || !strings.Contains(err.Error(), "Cisco was not called") {
			t.Fatalf("err = %v", err)
		}
		if env.simOrg().Rotations != 0 {
			t.Fatal("Cisco was called without a WAL entry")
		}
	})
}

func TestRotate_ConcurrentRequestsCollapse(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.rotate("acme")
			if err == nil && resp.IsError() {
				err = resp.Error()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rotations := env.simOrg().Rotations
	if rotations >= n/2 {
		t.Fatalf("simulator saw %d rotations for %d concurrent requests", rotations, n)
	}
	creds := env.assertServesSimKey("acme")
	if creds.Data["version"] != rotations {
		t.Fatalf("version %v after %d rotations", creds.Data["version"], rotations)
	}
	t.Logf("%d concurrent rotates made %d Cisco rotations", n, rotations)
}

func TestRotate_RefusedOffTheActiveNode(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.system.ReplicationStateVal = consts.ReplicationPerformanceStandby
	_, err := env.rotate("acme")
	if !errors.Is(err, logical.ErrReadOnly) {
		t.Fatalf("err = %v, want ErrReadOnly", err)
	}
	if env.simOrg().Rotations != 0 {
		t.Fatal("a standby called Cisco")
	}
}

func TestRotate_OwnRateLimitAnswers429(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	// A limit of one call per hour: the second rotation cannot start
	// within the call deadline.
	env.b.limiter = cisco.NewLimiter(cisco.WithLimits(cisco.RateLimit{Window: time.Hour, Calls: 1}))
	env.mustRotate("acme")
	calls := env.sim.State().RotateCalls
	_, err := env.rotate("acme")
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) || coded.Code() != http.StatusTooManyRequests || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("err = %v, want a 429", err)
	}
	if env.sim.State().RotateCalls != calls {
		t.Fatal("Cisco was called over the limit")
	}
	if ids, _ := env.storage.List(t.Context(), "wal/"); len(ids) != 0 {
		t.Fatal("a rotation that never started left a WAL entry")
	}
}

// A rotation Cisco refused answers 502 in Vault's {"errors": [...]} shape,
// with its message alone: returned as an error, Vault's core would wrap it
// as "1 error occurred: * ...".
func TestRotate_FailureAnswerIsTheMessageAlone(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	env.injectFault(ciscosim.Fault{Kind: "error200"})
	resp, err := env.b.HandleRequest(t.Context(), &logical.Request{Operation: logical.UpdateOperation,
		Path: "rotate/acme", Storage: env.storage, MountPoint: testMount})
	if err != nil || resp == nil {
		t.Fatalf("a failed rotation answered an error, which Vault wraps: %v", err)
	}
	var body struct{ Errors []string }
	if resp.Data[logical.HTTPStatusCode] != http.StatusBadGateway || resp.Data[logical.HTTPContentType] != "application/json" ||
		json.Unmarshal(resp.Data[logical.HTTPRawBody].([]byte), &body) != nil || len(body.Errors) != 1 ||
		!strings.HasPrefix(body.Errors[0], "rotation failed: ") || !strings.Contains(body.Errors[0], "Internal error") {
		t.Fatalf("answer %v", resp.Data)
	}
}

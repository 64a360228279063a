package backend

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// validConfig is a config at Cisco's real URLs, which tests cannot reach:
// it skips the credential check.
func validConfig() map[string]interface{} {
	return map[string]interface{}{
		"provider":          "umbrella",
		"client_id":         testClientID,
		"client_secret":     testClientSecret,
		"verify_connection": false,
	}
}

func TestConfig_Validation(t *testing.T) {
	cases := map[string]struct {
		set  map[string]interface{}
		drop []string
		want string
	}{
		"missing provider":         {drop: []string{"provider"}, want: "provider is required"},
		"unknown provider":         {set: map[string]interface{}{"provider": "meraki"}, want: "provider must be"},
		"missing client_id":        {drop: []string{"client_id"}, want: "client_id is required"},
		"missing client_secret":    {drop: []string{"client_secret"}, want: "client_secret is required"},
		"colon in client_id":       {set: map[string]interface{}{"client_id": "a:b"}, want: "client_id must not contain"},
		"org_id not numeric":       {set: map[string]interface{}{"org_id": "acme"}, want: "org_id must be"},
		"api_url plain http":       {set: map[string]interface{}{"api_url": "http://api.example.com/admin/v2"}, want: "plain http is allowed only for loopback"},
		"token_url plain http":     {set: map[string]interface{}{"token_url": "http://10.0.0.1/token"}, want: "token_url: must use https"},
		"api_url relative":         {set: map[string]interface{}{"api_url": "/admin/v2"}, want: "must be an absolute URL"},
		"api_url ftp":              {set: map[string]interface{}{"api_url": "ftp://api.example.com"}, want: "must use https"},
		"api_url with credentials": {set: map[string]interface{}{"api_url": "https://u:p@api.example.com"}, want: "must not carry credentials"},
		"api_url with query":       {set: map[string]interface{}{"api_url": "https://api.example.com/?x=1"}, want: "must not have a query"},
		"data_path foreign bucket": {set: map[string]interface{}{"data_path": "s3://my-bucket/logs"}, want: "data_path must look like s3://cisco-managed-<region>/<prefix>"},
		"data_path no prefix":      {set: map[string]interface{}{"data_path": "s3://cisco-managed-eu-central-1"}, want: "e.g. s3://cisco-managed-eu-central-1/"},
		"data_path dot dot":        {set: map[string]interface{}{"data_path": "cisco-managed-us-west-2/../x"}, want: "data_path must look like"},
		"period below 1m":          {set: map[string]interface{}{"rotation_period": "30s"}, want: "at least 1m"},
		"period 90 days":           {set: map[string]interface{}{"rotation_period": "90d"}, want: "Cisco locks the organization out"},
		"period over 90 days":      {set: map[string]interface{}{"rotation_period": "120d"}, want: "must be at most 89d"},
		"period of 89 days and 1s": {set: map[string]interface{}{"rotation_period": 89*86400 + 1}, want: "leave a day for retries"},
		"period and schedule":      {set: map[string]interface{}{"rotation_period": "30d", "rotation_schedule": "0 3 1 * *"}, want: "mutually exclusive"},
		"window without schedule":  {set: map[string]interface{}{"rotation_window": "2h"}, want: "only with rotation_schedule"},
		"window below 1h":          {set: map[string]interface{}{"rotation_schedule": "0 3 1 * *", "rotation_window": "30m"}, want: "at least 1h"},
		"schedule not cron":        {set: map[string]interface{}{"rotation_schedule": "every day"}, want: "not a 5-field cron expression"},
		"schedule with seconds":    {set: map[string]interface{}{"rotation_schedule": "0 0 3 1 * *"}, want: "not a 5-field cron expression"},
		"yearly schedule":          {set: map[string]interface{}{"rotation_schedule": "0 3 1 1 *"}, want: "at most 89 days apart"},
		"quarterly schedule":       {set: map[string]interface{}{"rotation_schedule": "0 3 1 */4 *"}, want: "at most 89 days apart"},
		"leap day schedule":        {set: map[string]interface{}{"rotation_schedule": "0 0 29 2 *"}, want: "at most 89 days apart"},
		"impossible schedule":      {set: map[string]interface{}{"rotation_schedule": "0 0 31 2 *"}, want: "rotation_schedule"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			data := validConfig()
			for _, k := range tc.drop {
				delete(data, k)
			}
			for k, v := range tc.set {
				data[k] = v
			}
			resp, err := env.write("config/acme", data)
			mustBadRequest(t, resp, err, tc.want)
			if strings.Contains(resp.Error().Error(), testClientSecret) {
				t.Fatal("error message contains the client secret")
			}
			if got, _ := env.read("config/acme"); got != nil {
				t.Fatalf("a rejected create stored a config: %v", got.Data)
			}
		})
	}
}

func TestConfig_AcceptedValues(t *testing.T) {
	cases := map[string]struct {
		set   map[string]interface{}
		check map[string]interface{}
	}{
		"umbrella defaults": {
			check: map[string]interface{}{
				"api_url": "https://api.umbrella.com/admin/v2", "token_url": "https://api.umbrella.com/auth/v2/token",
				"rotation_period": int64(60 * 86400), "disable_automated_rotation": false,
			},
		},
		"secure access defaults": {
			set:   map[string]interface{}{"provider": "secure_access"},
			check: map[string]interface{}{"api_url": "https://api.sse.cisco.com/admin/v2", "token_url": "https://api.sse.cisco.com/auth/v2/token"},
		},
		"loopback http and trailing slash": {
			set:   map[string]interface{}{"api_url": "http://127.0.0.1:8787/admin/v2/", "token_url": "http://localhost:8787/auth/v2/token"},
			check: map[string]interface{}{"api_url": "http://127.0.0.1:8787/admin/v2", "token_url": "http://localhost:8787/auth/v2/token"},
		},
		"ipv6 loopback": {
			set:   map[string]interface{}{"api_url": "http://[::1]:8787/admin/v2"},
			check: map[string]interface{}{"api_url": "http://[::1]:8787/admin/v2"},
		},
		"data path without s3 prefix": {
			set: map[string]interface{}{"data_path": "cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567/"},
			check: map[string]interface{}{
				"data_path":  "s3://cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567",
				"bucket":     "cisco-managed-eu-central-1",
				"region":     "eu-central-1",
				"prefix":     "1234567_0123456789abcdef0123456789abcdef01234567",
				"bucket_arn": "arn:aws:s3:::cisco-managed-eu-central-1",
			},
		},
		"period in days": {
			set:   map[string]interface{}{"rotation_period": "30d"},
			check: map[string]interface{}{"rotation_period": int64(30 * 86400)},
		},
		"shortest period": {
			set:   map[string]interface{}{"rotation_period": 60},
			check: map[string]interface{}{"rotation_period": int64(60)},
		},
		"longest period": {
			set:   map[string]interface{}{"rotation_period": "89d"},
			check: map[string]interface{}{"rotation_period": int64(89 * 86400)},
		},
		"monthly schedule with window": {
			set:   map[string]interface{}{"rotation_schedule": "0 3 1 * *", "rotation_window": "2h"},
			check: map[string]interface{}{"rotation_schedule": "0 3 1 * *", "rotation_window": int64(7200)},
		},
		"org id": {
			set:   map[string]interface{}{"org_id": "7654321"},
			check: map[string]interface{}{"org_id": "7654321"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			data := validConfig()
			for k, v := range tc.set {
				data[k] = v
			}
			env.mustWrite("config/acme", data)
			resp := env.mustRead("config/acme")
			for k, want := range tc.check {
				if got := resp.Data[k]; got != want {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
		})
	}
}

func TestConfig_ReadHasExactFieldsAndNoSecret(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"data_path": "s3://cisco-managed-us-west-2/1234567_abc"})
	resp := env.mustRead("config/acme")
	want := []string{
		"access_key_id", "api_url", "bucket", "bucket_arn", "client_id", "consecutive_failures", "data_path",
		"disable_automated_rotation", "graceful_rotation_at", "key_check", "key_check_interval", "key_check_result", "key_creation_date", "key_expires_at", "key_state", "key_verified_at",
		"key_verify_error", "last_rotation_error", "last_rotation_error_time", "last_vault_rotation", "next_vault_rotation",
		"org_id", "prefix", "provider", "region", "rotate_rejected_key", "rotation_period", "stale_cleared", "sts_url", "token_url", "version",
	}
	var got []string
	for k := range resp.Data {
		got = append(got, k)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("config read fields\n got %v\nwant %v", got, want)
	}
	for k, v := range resp.Data {
		if s, ok := v.(string); ok && strings.Contains(s, testClientSecret) {
			t.Fatalf("field %s holds the client secret", k)
		}
	}
	if resp.Data["key_state"] != "none" {
		t.Fatalf("key_state before any rotation = %v, want none", resp.Data["key_state"])
	}
}

func TestConfig_PartialUpdateKeepsOtherFields(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"org_id": "1234567", "rotation_period": "30d"})
	env.mustWrite("config/acme", map[string]interface{}{"client_id": "other-client", "verify_connection": false})
	resp := env.mustRead("config/acme")
	if resp.Data["client_id"] != "other-client" || resp.Data["org_id"] != "1234567" ||
		resp.Data["rotation_period"] != int64(30*86400) || resp.Data["api_url"] != env.srv.URL+"/admin/v2" {
		t.Fatalf("partial update lost fields: %v", resp.Data)
	}
	stored, err := getConfig(t.Context(), env.storage, "acme")
	if err != nil || stored.ClientSecret != testClientSecret {
		t.Fatalf("partial update lost the client secret: %v", err)
	}

	// Switching to a schedule clears the period, and back.
	env.mustWrite("config/acme", map[string]interface{}{"rotation_schedule": "0 3 * * 1"})
	resp = env.mustRead("config/acme")
	if resp.Data["rotation_schedule"] != "0 3 * * 1" || resp.Data["rotation_period"] != int64(7*86400) {
		t.Fatalf("schedule switch: %v", resp.Data)
	}
	env.mustWrite("config/acme", map[string]interface{}{"rotation_period": "10d"})
	resp = env.mustRead("config/acme")
	if _, ok := resp.Data["rotation_schedule"]; ok || resp.Data["rotation_period"] != int64(10*86400) {
		t.Fatalf("period switch: %v", resp.Data)
	}
	// An update may not blank a required field.
	resp, err = env.write("config/acme", map[string]interface{}{"client_secret": ""})
	mustBadRequest(t, resp, err, "client_secret is required")
}

func TestConfig_ListAndDelete(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.configureOwnOrg("globex", nil)
	env.mustRotate("acme")

	resp := env.mustRequest(logical.ListOperation, "config/", nil)
	keys := resp.Data["keys"].([]string)
	if strings.Join(keys, ",") != "acme,globex" {
		t.Fatalf("list = %v", keys)
	}
	env.mustRequest(logical.DeleteOperation, "config/acme", nil)
	if resp, _ := env.read("config/acme"); resp != nil {
		t.Fatalf("config survived delete: %v", resp.Data)
	}
	for _, key := range []string{configPrefix + "acme", keyPrefix + "acme"} {
		if entry, _ := env.storage.Get(t.Context(), key); entry != nil {
			t.Fatalf("%s survived delete", key)
		}
	}
	resp, err := env.read("creds/acme")
	mustBadRequest(t, resp, err, "no organization")
	if env.b.sched.queued("acme") {
		t.Fatal("deleted organization is still scheduled")
	}
	// A new config under the same name starts without a key.
	env.configure("acme", nil)
	resp, err = env.read("creds/acme")
	mustBadRequest(t, resp, err, "no key is stored")
}

func TestConfig_WriteStorageFailureIsReported(t *testing.T) {
	env := newTestEnv(t)
	env.storage.setFailPut(func(key string) bool { return strings.HasPrefix(key, configPrefix) })
	_, err := env.write("config/acme", validConfig())
	if err == nil {
		t.Fatal("a failed config write reported success")
	}
	env.storage.setFailPut(nil)
	if resp, _ := env.read("config/acme"); resp != nil {
		t.Fatal("a failed write left a config behind")
	}
}

// A config write that changes the credentials retries a failing rotation at
// the next tick instead of waiting out the backoff.
func TestConfig_CredentialFixRetriesAtOnce(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", map[string]interface{}{"rotation_period": "1m"})
	env.mustRotate("acme")
	env.mustWrite("config/acme", map[string]interface{}{"client_secret": "wrong-secret-value", "verify_connection": false})
	env.clock.Advance(time.Minute)
	for i := 0; i < 6; i++ {
		env.tick()
		next, _ := time.Parse(time.RFC3339, env.mustRead("config/acme").Data["next_vault_rotation"].(string))
		env.clock.Advance(next.Sub(env.clock.Now()))
	}
	env.tick()
	next, _ := time.Parse(time.RFC3339, env.mustRead("config/acme").Data["next_vault_rotation"].(string))
	if next.Sub(env.clock.Now()) < 30*time.Minute {
		t.Fatalf("the backoff after 7 failures is only %v", next.Sub(env.clock.Now()))
	}
	env.mustWrite("config/acme", map[string]interface{}{"client_secret": testClientSecret})
	if got := env.mustRead("config/acme").Data["next_vault_rotation"]; got != env.clock.Now().Format(time.RFC3339) {
		t.Fatalf("after the fix next_vault_rotation = %v, want now", got)
	}
	env.tick()
	env.assertServesSimKey("acme")
	if got := env.mustRead("config/acme").Data["consecutive_failures"]; got != 0 {
		t.Fatalf("consecutive_failures = %v after the fix", got)
	}
}

// key_check_interval: at least a minute, 0 turns the scheduled checks off,
// and a config stored before it existed gets the default.
func TestConfig_KeyCheckInterval(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	if got := env.mustRead("config/acme").Data["key_check_interval"]; got != int64(3600) {
		t.Fatalf("default key_check_interval %v, want 3600", got)
	}
	resp, err := env.write("config/acme", map[string]interface{}{"key_check_interval": "30s"})
	mustBadRequest(t, resp, err, "key_check_interval must be at least 1m")
	env.mustWrite("config/acme", map[string]interface{}{"key_check_interval": 0, "rotate_rejected_key": false})
	data := env.mustRead("config/acme").Data
	if data["key_check_interval"] != int64(0) || data["rotate_rejected_key"] != false {
		t.Fatalf("key_check_interval %v, rotate_rejected_key %v", data["key_check_interval"], data["rotate_rejected_key"])
	}
	var legacy orgConfig
	if err := json.Unmarshal([]byte(`{"provider":"umbrella","client_id":"a","client_secret":"b","rotation_period":1}`), &legacy); err != nil {
		t.Fatal(err)
	}
	if legacy.checkInterval() != defaultKeyCheckInterval || !legacy.heals() {
		t.Fatalf("a config stored before the fields existed: interval %v, heals %v", legacy.checkInterval(), legacy.heals())
	}
}

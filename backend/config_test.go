package backend

import "testing"

func TestKeyCheck_Endpoint(t *testing.T) {
	cases := []struct{ override, dataPath, want string }{
		{"", "", "https://sts.amazonaws.com"},
		{"", "s3://cisco-managed-eu-central-1/1234567_abc", "https://sts.eu-central-1.amazonaws.com"},
		{"https://sts.example.internal", "s3://cisco-managed-eu-central-1/1234567_abc", "https://sts.example.internal"},
	}
	for _, tc := range cases {
		cfg := &orgConfig{STSURL: tc.override, DataPath: tc.dataPath}
		cfg.derive()
		if got := cfg.stsURL(); got != tc.want {
			t.Fatalf("sts_url for override %q, data_path %q: %s, want %s", tc.override, tc.dataPath, got, tc.want)
		}
	}

	env := newTestEnv(t)
	env.configure("acme", nil)
	for _, bad := range []string{"http://sts.example.com", "ftp://127.0.0.1", "https://sts.example.com/?x=1"} {
		resp, err := env.write("config/acme", map[string]interface{}{"sts_url": bad})
		mustBadRequest(t, resp, err, "sts_url")
	}
	env.mustWrite("config/acme", map[string]interface{}{"key_check": false, "data_path": "s3://cisco-managed-eu-west-1/1234567_abc", "sts_url": ""})
	resp := env.mustRead("config/acme")
	if resp.Data["key_check"] != false || resp.Data["sts_url"] != "https://sts.eu-west-1.amazonaws.com" {
		t.Fatalf("config read: key_check=%v sts_url=%v", resp.Data["key_check"], resp.Data["sts_url"])
	}
}

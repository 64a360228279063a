package backend

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// alertPrefixes are the prefixes of the ERROR lines docs/operations.md
// tells operators to alert on.
var alertPrefixes = []string{bucketkey.LogRotationFailed, bucketkey.LogKeyMayBeDead, logNearsLockout}

// logLines are the JSON log lines whose message starts with prefix.
func logLines(t *testing.T, env *testEnv, prefix string) []map[string]interface{} {
	t.Helper()
	var lines []map[string]interface{}
	for _, raw := range strings.Split(env.logs.String(), "\n") {
		var line map[string]interface{}
		if json.Unmarshal([]byte(raw), &line) != nil {
			continue
		}
		if msg, _ := line["@message"].(string); strings.HasPrefix(msg, prefix) {
			lines = append(lines, line)
		}
	}
	return lines
}

// Every failed rotation logs at ERROR with the documented prefix, the
// definite ones too: nothing rotates until someone fixes their cause.
func TestLogs_EveryFailedRotationIsAnError(t *testing.T) {
	cases := map[string]func(env *testEnv){
		"Cisco refuses with a 200 error body": func(env *testEnv) { env.injectFault(ciscosim.Fault{Kind: "error200"}) },
		"a revoked API key": func(env *testEnv) {
			env.mustWrite("config/acme", map[string]interface{}{"client_secret": "revoked", "verify_connection": false})
		},
		"no reply":           func(env *testEnv) { env.injectFault(ciscosim.Fault{Kind: "drop"}) },
		"the key is lost":    func(env *testEnv) { env.storage.setFailPut(failUnder(keyPrefix, -1)) },
		"a 5xx-style answer": func(env *testEnv) { env.injectFault(ciscosim.Fault{Kind: "5xx"}) },
	}
	for name, inject := range cases {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure("acme", nil)
			env.mustRotate("acme")
			inject(env)
			if _, err := env.rotate("acme"); err == nil {
				t.Fatal("the rotation did not fail")
			}
			env.storage.setFailPut(nil)
			lines := logLines(t, env, bucketkey.LogRotationFailed)
			if len(lines) == 0 {
				t.Fatalf("no line starts with %q:\n%s", bucketkey.LogRotationFailed, env.logs.String())
			}
			for _, l := range lines {
				if l["@level"] != "error" || l["name"] != "acme" {
					t.Fatalf("a failed rotation logged at %v for %v: %v", l["@level"], l["name"], l["@message"])
				}
			}
		})
	}
}

// The prefixes docs/operations.md lists are the code's, all of them.
func TestLogs_DocumentedPrefixesAreTheCodes(t *testing.T) {
	doc := readDoc(t, "docs/operations.md")
	i := strings.Index(doc, "### Log lines to alert on")
	if i < 0 {
		t.Fatal(`docs/operations.md has no "### Log lines to alert on" section`)
	}
	// The table's rows: the lines that start with "|" after its header.
	var documented []string
	rows := strings.Split(doc[i:], "\n")
	start := slices.IndexFunc(rows, func(r string) bool { return strings.HasPrefix(r, "| ERROR line starts with") })
	if start < 0 {
		t.Fatal("the section has no table of ERROR lines")
	}
	for _, row := range rows[start+2:] {
		if !strings.HasPrefix(row, "|") {
			break
		}
		m := regexp.MustCompile("^\\| `([^`]+)` \\|").FindStringSubmatch(row)
		if m == nil {
			t.Fatalf("a row of the table does not start with a quoted prefix: %s", row)
		}
		documented = append(documented, m[1])
	}
	slices.Sort(documented)
	code := slices.Clone(alertPrefixes)
	slices.Sort(code)
	if !slices.Equal(documented, code) {
		t.Fatalf("docs/operations.md lists %q; the code logs %q", documented, code)
	}
}

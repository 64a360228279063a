package backend

import (
	"fmt"
	"strings"
	"testing"
)

// TestSecretsNeverPrinted: any %v, %+v or %#v of a value holding a secret,
// as a log line or a panic would print it, redacts the secret.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-VALUE-never-printed"
	values := map[string]interface{}{
		"orgConfig":      orgConfig{ClientID: "id", ClientSecret: secret},
		"*orgConfig":     &orgConfig{ClientID: "id", ClientSecret: secret},
		"keyState":       keyState{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"*keyState":      &keyState{AccessKeyID: "AKIA", SecretAccessKey: secret},
		"orgEntry":       orgEntry{config: &orgConfig{ClientSecret: secret}, key: &keyState{SecretAccessKey: secret}},
		"panic of entry": panicText(func() { panic(&orgConfig{ClientSecret: secret}) }),
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, secret) {
				t.Errorf("%s printed with %s leaks the secret: %s", name, verb, out)
			}
		}
	}
}

func panicText(f func()) (out string) {
	defer func() { out = fmt.Sprint(recover()) }()
	f()
	return ""
}

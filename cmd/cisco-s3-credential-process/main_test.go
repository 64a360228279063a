package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"

	"vault-plugin-secrets-cisco-s3/internal/credprocess"
)

// build compiles the command once per test.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cisco-s3-credential-process")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// aws-sdk-go-v2's own credential_process provider runs the command, as a
// shipper's SDK does, and gets credentials that expire: so its cache runs
// the command again, and a key the file changed to is picked up.
func TestCredentialProcess_AnAWSSDKRefreshesThroughIt(t *testing.T) {
	bin := build(t)
	file := filepath.Join(t.TempDir(), "cisco-s3.json")
	write := func(id string) {
		body := `{"Version": 1, "AccessKeyId": "` + id + `", "SecretAccessKey": "s3cr3t-` + id + `"}`
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("AKIAFIRST")
	p := processcreds.NewProvider(bin + " " + file)
	before := time.Now()
	creds, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "AKIAFIRST" || creds.SecretAccessKey != "s3cr3t-AKIAFIRST" || !creds.CanExpire {
		t.Fatalf("got %+v", creds)
	}
	if ahead := creds.Expires.Sub(before); ahead < credprocess.Lifetime || ahead > credprocess.Lifetime+2*time.Second {
		t.Fatalf("expires %s after the call; want about %s", ahead, credprocess.Lifetime)
	}
	write("AKIASECOND")
	creds, err = p.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKIASECOND" {
		t.Fatalf("after the file changed: %+v, %v", creds, err)
	}
}

func TestCredentialProcess_FailsWithAReasonAndNoSecret(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"Version":1,"AccessKeyId":"AKIA","SecretAccessKey":"s3cr3t-value`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		code int
		want string
	}{
		"no file":      {nil, 2, "usage:"},
		"two files":    {[]string{bad, bad}, 2, "usage:"},
		"missing file": {[]string{filepath.Join(dir, "none.json")}, 1, "is Vault Agent rendering it?"},
		"bad file":     {[]string{bad}, 1, "not JSON"},
	} {
		cmd := exec.Command(bin, c.args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != c.code || !strings.Contains(stderr.String(), c.want) || stdout.Len() != 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", name, code, stdout.String(), stderr.String(), c.code, c.want)
		}
		if strings.Contains(stderr.String(), "s3cr3t") {
			t.Errorf("%s: stderr quotes the secret: %s", name, stderr.String())
		}
	}
}

//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// awsCLI is the AWS CLI the suite runs: $AWS_CLI, else Debian's, else the
// one on PATH.
func awsCLI(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("AWS_CLI"); bin != "" {
		return bin
	}
	if _, err := os.Stat("/usr/bin/aws"); err == nil {
		return "/usr/bin/aws"
	}
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("no AWS CLI: install Debian's awscli (apt-get install awscli; make deps does)")
	}
	return bin
}

// bucketOf splits the simulator's data path into bucket and prefix.
func bucketOf(t *testing.T, dataPath string) (bucket, prefix, region string) {
	t.Helper()
	rest := strings.TrimPrefix(dataPath, "s3://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	region = strings.TrimPrefix(bucket, "cisco-managed-")
	if bucket == "" || prefix == "" || region == bucket {
		t.Fatalf("unexpected data path %q", dataPath)
	}
	return bucket, strings.TrimSuffix(prefix, "/"), region
}

// aws runs the AWS CLI against the simulator with one credentials file and
// nothing else: no config file, no instance metadata, no retries.
func aws(t *testing.T, bin, endpoint, credentials, region string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoint-url", endpoint}, args...)...)
	home := t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_SHARED_CREDENTIALS_FILE=" + credentials, "AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
		"AWS_DEFAULT_REGION=" + region, "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER="}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAWSCLI reads the bucket with the credentials file that Vault Agent
// renders, with the real AWS CLI: STS, S3 listing and download. A file
// with a wrong secret fails, and an import with a wrong secret is refused.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	bin := awsCLI(t)
	plugins := pluginDir(t)
	s := startSim(t)
	v := startDevVault(t, plugins)
	v.enablePlugin(t, plugins)
	org := s.org(t, awsOrg)
	bucket, prefix, region := bucketOf(t, org.DataPath)
	v.configure(t, s, "aws", awsClient, awsSecret, "org_id="+awsOrg, "data_path="+org.DataPath, "rotation_period=30d")
	v.must(t, "write", "-f", mountPrefix+"/rotate/aws")
	agent := startAgent(t, v, "aws")
	k := s.org(t, awsOrg)
	waitFor(t, 30*time.Second, "the agent to render the key", func() bool {
		return agent.renderedFor("aws") == credentialsFile(k.CurrentKeyID, k.SecretAccessKey)
	})
	file := agent.dests["aws"]

	out, err := aws(t, bin, s.url, file, region, "sts", "get-caller-identity", "--output", "json")
	var id struct{ Account, Arn string }
	if err != nil || json.Unmarshal([]byte(out), &id) != nil || id.Account != org.AccountID {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, out)
	}
	out, err = aws(t, bin, s.url, file, region, "s3", "ls", "--recursive", "s3://"+bucket+"/"+prefix+"/")
	if err != nil || !strings.Contains(out, prefix+"/dnslogs/") {
		t.Fatalf("aws s3 ls: %v\n%s", err, out)
	}
	object := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[0])
	out, err = aws(t, bin, s.url, file, region, "s3", "cp", "s3://"+bucket+"/"+object[len(object)-1], filepath.Join(t.TempDir(), "log.csv.gz"))
	if err != nil {
		t.Fatalf("aws s3 cp: %v\n%s", err, out)
	}
	t.Logf("aws sts get-caller-identity: account %s; aws s3 ls and cp read %s", id.Account, object[len(object)-1])

	// The simulator checks signatures: a wrong secret fails.
	bad := filepath.Join(t.TempDir(), "credentials")
	writeFile(t, bad, credentialsFile(k.CurrentKeyID, strings.ToLower(k.SecretAccessKey)))
	for _, args := range [][]string{{"sts", "get-caller-identity"}, {"s3", "ls", "s3://" + bucket + "/" + prefix + "/"}} {
		if out, err := aws(t, bin, s.url, bad, region, args...); err == nil || !strings.Contains(out, "SignatureDoesNotMatch") {
			t.Fatalf("aws %s with a wrong secret: %v\n%s", args[0], err, out)
		}
	}

	if got := v.data(t, "write", "-f", mountPrefix+"/verify/aws"); got["result"] != "valid" || got["account"] != org.AccountID {
		t.Fatalf("verify/aws: %v", got)
	}

	// A dashboard refresh, then an import with a mistyped secret: refused,
	// and the stored key stays as it was.
	before := v.data(t, "read", mountPrefix+"/creds/aws")
	fresh := s.post(t, "/_sim/refresh", `{"org_id":"`+awsOrg+`"}`)
	wrong := strings.ToLower(fresh["secretAccessKey"].(string))
	msg := v.fails(t, "secret_access_key", "write", mountPrefix+"/import/aws", fmt.Sprintf("access_key_id=%s", fresh["accessKeyId"]),
		"secret_access_key="+wrong, fmt.Sprintf("key_creation_date=%s", fresh["keyCreationDate"]))
	if !strings.Contains(msg, "Nothing was stored") || strings.Contains(msg, wrong) {
		t.Fatalf("the refusal: %s", msg)
	}
	if after := v.data(t, "read", mountPrefix+"/creds/aws"); after["version"] != before["version"] || after["access_key_id"] != before["access_key_id"] {
		t.Fatalf("a refused import changed the key: version %v → %v", before["version"], after["version"])
	}
	v.must(t, "write", mountPrefix+"/import/aws", fmt.Sprintf("access_key_id=%s", fresh["accessKeyId"]),
		fmt.Sprintf("secret_access_key=%s", fresh["secretAccessKey"]), fmt.Sprintf("key_creation_date=%s", fresh["keyCreationDate"]))
	if got := v.data(t, "read", mountPrefix+"/creds/aws"); got["key_verified_at"] == nil {
		t.Fatalf("the imported key is not verified: %v", got["key_verify_error"])
	}
}

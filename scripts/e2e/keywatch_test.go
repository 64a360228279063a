//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestKeyWatch kills served keys outside Vault in a real Vault with
// key_check_interval=1m. A refresh in the simulator's dashboard that
// nothing tells Vault of: the AWS CLI, reading through the file Vault Agent
// renders, lists the bucket again within 6 minutes, and the suite prints
// how long listing failed. An STS that rejects every key: the plugin
// rotates at most once in 5 minutes.
func TestKeyWatch(t *testing.T) {
	t.Parallel()
	bin := awsCLI(t)
	plugins := pluginDir(t)
	s := startSim(t)
	v := startDevVault(t, plugins)
	v.enablePlugin(t, plugins)

	t.Run("dashboard refresh is healed", func(t *testing.T) {
		t.Parallel()
		org := s.org(t, awsOrg)
		bucket, prefix, region := bucketOf(t, org.DataPath)
		v.configure(t, s, "watched", awsClient, awsSecret, "org_id="+awsOrg, "data_path="+org.DataPath, "key_check_interval=1m")
		v.must(t, "write", "-f", mountPrefix+"/rotate/watched")
		agent := startAgent(t, v, "watched")
		file := agent.dests["watched"]
		list := func() bool {
			_, err := aws(t, bin, s.url, file, region, "s3", "ls", "s3://"+bucket+"/"+prefix+"/")
			return err == nil
		}
		waitFor(t, time.Minute, "the rotated key to be rendered and verified", func() bool {
			return list() && v.data(t, "read", mountPrefix+"/creds/watched")["key_verified_at"] != nil
		})
		rotations := s.org(t, awsOrg).Rotations
		refreshed := time.Now()
		s.post(t, "/_sim/refresh", `{"org_id":"`+awsOrg+`"}`)
		var failedFor time.Duration
		waitFor(t, 6*time.Minute, "listing to work again after the dashboard refresh", func() bool {
			if list() {
				return true
			}
			failedFor = time.Since(refreshed)
			time.Sleep(time.Second)
			return false
		})
		healed := time.Since(refreshed)
		creds := v.assertServes(t, s, "watched", awsOrg)
		if creds["key_state"] != "current" {
			t.Fatalf("after the heal key_state is %v", creds["key_state"])
		}
		if got := s.org(t, awsOrg).Rotations - rotations; got != 1 {
			t.Fatalf("%d rotations healed the refresh, want 1", got)
		}
		fmt.Printf("key watch: after a dashboard refresh nothing told Vault of, listing failed for %d s and worked again %d s after the refresh (key_check_interval=1m)\n",
			int(failedFor.Seconds()), int(healed.Seconds()))
	})

	t.Run("an STS that rejects every key rotates at most once", func(t *testing.T) {
		t.Parallel()
		v.configure(t, s, "rejecting", simClient, simSecret, "key_check_interval=1m")
		v.must(t, "write", "-f", mountPrefix+"/rotate/rejecting")
		waitFor(t, time.Minute, "the rotated key to be verified", func() bool {
			return v.data(t, "read", mountPrefix+"/creds/rejecting")["key_verified_at"] != nil
		})
		rotations := s.org(t, simOrg).Rotations
		// For every call the organization's current key signs: the healed
		// key's too.
		s.post(t, "/_sim/faults", `{"kind":"sts_reject","count":100000,"org_id":"`+simOrg+`"}`)
		time.Sleep(5 * time.Minute)
		if got := s.org(t, simOrg).Rotations - rotations; got > 1 {
			t.Fatalf("%d rotations in 5 minutes of an STS that rejects every key, want at most 1", got)
		}
		creds := v.data(t, "read", mountPrefix+"/creds/rejecting")
		if creds["key_state"] != "rejected" {
			t.Fatalf("key_state %v, want rejected", creds["key_state"])
		}
		fmt.Printf("key watch: an STS that rejects every key rotated %d time(s) in 5 minutes; the key shows %v\n",
			s.org(t, simOrg).Rotations-rotations, creds["key_state"])
	})
}

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
		waitFor(t, 5*time.Minute-healed, "creds to serve Cisco's current key, verified, within 5 minutes of the refresh", func() bool {
			creds := v.data(t, "read", mountPrefix+"/creds/watched")
			return creds["access_key_id"] == s.org(t, awsOrg).CurrentKeyID && creds["key_state"] == "current" && creds["key_verified_at"] != nil
		})
		v.assertServes(t, s, "watched", awsOrg)
		if got := s.org(t, awsOrg).Rotations - rotations; got != 1 {
			t.Fatalf("%d rotations healed the refresh, want 1", got)
		}
		fmt.Printf("key watch: after a dashboard refresh nothing told Vault of, listing failed for %d s and worked again %d s after the refresh (key_check_interval=1m)\n",
			int(failedFor.Seconds()), int(healed.Seconds()))
	})

	t.Run("with the heal off the key shows rejected and nothing rotates", func(t *testing.T) {
		t.Parallel()
		v.configure(t, s, "reported", autoClient, autoSecret, "key_check_interval=1m", "rotate_rejected_key=false")
		v.must(t, "write", "-f", mountPrefix+"/rotate/reported")
		waitFor(t, time.Minute, "the rotated key to be verified", func() bool {
			return v.data(t, "read", mountPrefix+"/creds/reported")["key_verified_at"] != nil
		})
		rotations := s.org(t, autoOrg).Rotations
		refreshed := time.Now()
		s.post(t, "/_sim/refresh", `{"org_id":"`+autoOrg+`"}`)
		waitFor(t, 5*time.Minute, "the dead key to show as rejected within 5 minutes of the refresh", func() bool {
			return v.data(t, "read", mountPrefix+"/creds/reported")["key_state"] == "rejected"
		})
		if got := s.org(t, autoOrg).Rotations - rotations; got != 0 {
			t.Fatalf("%d rotations with rotate_rejected_key=false", got)
		}
		fmt.Printf("key watch: with the heal off, the dead key showed as rejected %d s after the dashboard refresh\n",
			int(time.Since(refreshed).Seconds()))
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
		// The healed key is rejected too, a minute apart, and shown so.
		var creds map[string]interface{}
		waitFor(t, 3*time.Minute, "the key to show as rejected", func() bool {
			creds = v.data(t, "read", mountPrefix+"/creds/rejecting")
			return creds["key_state"] == "rejected"
		})
		if got := s.org(t, simOrg).Rotations - rotations; got > 1 {
			t.Fatalf("%d rotations of an STS that rejects every key, want at most 1", got)
		}
		fmt.Printf("key watch: an STS that rejects every key rotated %d time(s) in 5 minutes; the key shows %v\n",
			s.org(t, simOrg).Rotations-rotations, creds["key_state"])
	})
}

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// propagationDelay is how long the simulator refuses a new key, as AWS
// does for some seconds after a key is created.
const propagationDelay = 5 * time.Second

// gapGoal is the promise for a scheduled or graceful rotation: listing fails at most
// for the propagation delay plus 2 s.
const gapGoal = propagationDelay + 2*time.Second

// listing is one `aws s3 ls` through the rendered credentials file.
type listing struct {
	start, end time.Time
	ok         bool
}

// TestIngestionGapAWSCLI lists the bucket every second with a fresh AWS
// CLI process through the file Vault Agent renders, across a manual, two
// scheduled and a graceful manual rotation, and reports per rotation the
// seconds during which listing failed. A fresh process reads the file each
// time: this measures the file, not a long-running shipper (TestShippers).
func TestIngestionGapAWSCLI(t *testing.T) {
	t.Parallel()
	bin := awsCLI(t)
	plugins := pluginDir(t)
	s := startSim(t, "-propagation-delay", propagationDelay.String())
	v := startDevVault(t, plugins)
	v.enablePlugin(t, plugins)
	org := s.org(t, awsOrg)
	bucket, prefix, region := bucketOf(t, org.DataPath)
	v.configure(t, s, "gap", awsClient, awsSecret, "org_id="+awsOrg, "data_path="+org.DataPath, "rotation_period=60s")
	v.must(t, "write", "-f", mountPrefix+"/rotate/gap")
	agent := startAgent(t, v, "gap")
	file := agent.dests["gap"]
	waitFor(t, time.Minute, "the first key to be rendered and accepted", func() bool {
		k := s.org(t, awsOrg)
		_, err := aws(t, bin, s.url, file, region, "s3", "ls", "s3://"+bucket+"/"+prefix+"/")
		return agent.renderedFor("gap") == credentialsFile(k.CurrentKeyID, k.SecretAccessKey) && err == nil
	})

	var mu sync.Mutex
	var samples []listing
	ctx, stop := context.WithCancel(context.Background())
	var running sync.WaitGroup
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			running.Add(1)
			go func() {
				defer running.Done()
				start := time.Now()
				_, err := aws(t, bin, s.url, file, region, "s3", "ls", "s3://"+bucket+"/"+prefix+"/")
				mu.Lock()
				samples = append(samples, listing{start: start, end: time.Now(), ok: err == nil})
				mu.Unlock()
			}()
		}
	}()

	type rotation struct {
		trigger string
		at      time.Time
	}
	var rotations []rotation
	base := s.org(t, awsOrg).Rotations
	awaitRotation := func(trigger string) {
		want := base + len(rotations) + 1
		deadline := time.Now().Add(4 * time.Minute)
		for s.org(t, awsOrg).Rotations < want {
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("no %s rotation within 4 minutes", trigger)
			}
			time.Sleep(100 * time.Millisecond)
		}
		rotations = append(rotations, rotation{trigger, time.Now()})
	}
	time.Sleep(10 * time.Second)
	v.must(t, "write", "-f", mountPrefix+"/rotate/gap")
	awaitRotation("manual")
	awaitRotation("scheduled")
	awaitRotation("scheduled")
	// No more scheduled rotations; then a graceful manual one, which
	// consumers see coming, as they see a scheduled one.
	v.must(t, "write", mountPrefix+"/config/gap", "disable_automated_rotation=true")
	v.must(t, "write", mountPrefix+"/rotate/gap", "graceful=true")
	awaitRotation("graceful")
	last := rotations[len(rotations)-1].at
	waitFor(t, 90*time.Second, "listing to work with the last key", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := len(samples)
		return n >= 3 && samples[n-3].start.After(last) && samples[n-3].ok && samples[n-2].ok && samples[n-1].ok
	})
	stop()
	running.Wait()

	if got := v.data(t, "read", mountPrefix+"/creds/gap"); got["key_verified_at"] == nil || got["key_verify_error"] != "" {
		t.Fatalf("the last rotated key: key_verified_at=%v key_verify_error=%v", got["key_verified_at"], got["key_verify_error"])
	}
	for i, r := range rotations {
		until := time.Now().Add(time.Hour)
		if i+1 < len(rotations) {
			until = rotations[i+1].at
		}
		failed, total := 0, 0
		var first, last time.Time
		for _, smp := range samples {
			if smp.end.Before(r.at) || !smp.end.Before(until) {
				continue
			}
			total++
			if smp.ok {
				continue
			}
			if failed == 0 {
				first = smp.start
			}
			failed++
			last = smp.end
		}
		span := time.Duration(0)
		if failed > 0 {
			span = last.Sub(first)
		}
		t.Logf("rotation %d (%s): listing failed in %d of %d listings, %d s, over %.1f s after the rotation",
			i+1, r.trigger, failed, total, failed, span.Seconds())
		// Cisco kills the old key at once and the new one works after the
		// delay: every rotation shows a gap, or the measurement is blind.
		if failed < int(propagationDelay/time.Second)-2 {
			t.Errorf("rotation %d (%s): only %d failed listings; the propagation delay alone should fail about %d", i+1, r.trigger, failed, int(propagationDelay/time.Second))
		}
		limit := gapGoal
		if r.trigger == "manual" {
			// A consumer learns of a manual rotation at its next re-read,
			// at most the creds ttl (50 s) plus 1 s later.
			limit = 51*time.Second + 2*time.Second
		}
		if time.Duration(failed)*time.Second > limit {
			t.Errorf("rotation %d (%s): listing failed for %d s; the goal is at most %s", i+1, r.trigger, failed, limit)
		}
	}
	fmt.Printf("ingestion gap (a fresh AWS CLI per listing): %d listings over %d rotations\n", len(samples), len(rotations))
}

// Command cisco-s3-load measures creds reads through a real Vault against
// reads of a builtin KV v2 secret of similar size on the same server, in
// alternating rounds, and prints both rates and the median ratio.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", os.Getenv("VAULT_ADDR"), "Vault address")
	token := flag.String("token", os.Getenv("VAULT_TOKEN"), "Vault token")
	creds := flag.String("creds", "cisco-s3/creds/demo", "creds path")
	kv := flag.String("kv", "secret/data/bench", "KV v2 data path of the baseline secret")
	workers := flag.Int("goroutines", 8, "concurrent readers")
	rounds := flag.Int("rounds", 6, "rounds per target")
	per := flag.Duration("duration", 3*time.Second, "length of one round")
	seed := flag.Int("seed", 0, "instead of measuring reads: store this many organizations with keys, then print the plugin process's RSS")
	pluginMatch := flag.String("plugin-match", "vault-plugin-secrets-cisco-s3", "with -seed: text in the plugin process's command line")
	flag.Parse()
	if *addr == "" || *token == "" {
		log.Fatal("set -addr and -token, or VAULT_ADDR and VAULT_TOKEN")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers * 2}, Timeout: 30 * time.Second}
	if *seed > 0 {
		seedOrganizations(client, *addr, *token, *seed, *workers, *pluginMatch)
		return
	}

	var ratios []float64
	for r := 0; r < *rounds; r++ {
		// Alternate which target goes first, so drift hits both alike.
		order := []string{*creds, *kv}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		rates := map[string]float64{}
		for _, path := range order {
			rates[path] = measure(client, *addr, *token, path, *workers, *per)
		}
		ratio := rates[*creds] / rates[*kv]
		ratios = append(ratios, ratio)
		fmt.Printf("round %d: creds %.0f req/s, kv-v2 %.0f req/s, ratio %.2f\n", r+1, rates[*creds], rates[*kv], ratio)
	}
	sort.Float64s(ratios)
	median := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		median = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
	}
	fmt.Printf("median ratio creds/kv-v2 over %d rounds with %d goroutines: %.2f\n", *rounds, *workers, median)
}

// measure reads path with n goroutines for d and returns requests per second.
func measure(client *http.Client, addr, token, path string, n int, d time.Duration) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/v1/"+path, nil)
				req.Header.Set("X-Vault-Token", token)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					done.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		log.Fatalf("%s: %d failed reads", path, f)
	}
	return float64(done.Load()) / time.Since(start).Seconds()
}

// seedOrganizations stores n organizations, each with an imported key, and
// prints the resident memory of the plugin process that holds them.
func seedOrganizations(client *http.Client, addr, token string, n, workers int, match string) {
	rssBefore := pluginRSS(match)
	created := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05")
	names := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				name := fmt.Sprintf("org-%05d", i)
				// Fake API keys at Cisco's real URLs: skip the credential check.
				cfg := fmt.Sprintf(`{"provider":"umbrella","client_id":"client-%05d","client_secret":"secret-%05d","org_id":"%d","verify_connection":false,`+
					`"data_path":"s3://cisco-managed-us-west-2/%d_0123456789abcdef0123456789abcdef01234567"}`, i, i, 1000000+i, 1000000+i)
				key := fmt.Sprintf(`{"access_key_id":"AKIA%016d","secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCY%010d","key_creation_date":%q}`, i, i, created)
				if !post(client, addr, token, "cisco-s3/config/"+name, cfg) || !post(client, addr, token, "cisco-s3/import/"+name, key) {
					failed.Add(1)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		names <- i
	}
	close(names)
	wg.Wait()
	if failed.Load() > 0 {
		log.Fatalf("%d organizations failed to store", failed.Load())
	}
	fmt.Printf("plugin RSS: %.1f MiB before, %.1f MiB with %d organizations\n", rssBefore, pluginRSS(match), n)
}

func post(client *http.Client, addr, token, path, body string) bool {
	req, _ := http.NewRequest(http.MethodPost, addr+"/v1/"+path, strings.NewReader(body))
	req.Header.Set("X-Vault-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// pluginRSS returns the resident memory in MiB of the plugin process whose
// command line contains match, read from /proc.
func pluginRSS(match string) float64 {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), match) || strings.Contains(string(cmdline), "cisco-s3-load") {
			continue
		}
		status, err := os.ReadFile("/proc/" + d.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				var kb float64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
				return kb / 1024
			}
		}
	}
	return 0
}

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
	flag.Parse()
	if *addr == "" || *token == "" {
		log.Fatal("set -addr and -token, or VAULT_ADDR and VAULT_TOKEN")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers * 2}, Timeout: 10 * time.Second}

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

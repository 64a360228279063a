// Command cisco-s3-sim simulates Cisco's "Refresh S3 Bucket Key" API for
// tests, make dev and your own pipelines. The same address also plays AWS
// STS and a read-only S3 for the keys it issues (aws --endpoint-url).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// Version is stamped at release time with -ldflags "-X main.Version=v1.2.3".
var Version = "dev"

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	addr := flag.String("addr", "127.0.0.1:8787", "listen address; port 0 picks a free port")
	configFile := flag.String("config", "", "JSON config file (api_keys, orgs, token_ttl, no_rate_limits, propagation_delay)")
	tokenTTL := flag.Duration("token-ttl", 0, "token lifetime (default 1h)")
	propagation := flag.Duration("propagation-delay", 0, "how long a rotated or refreshed key takes to work in STS and S3")
	noLimits := flag.Bool("no-rate-limits", false, "turn off Cisco's rate limits")
	showVersion := flag.Bool("version", false, "print the version and exit")
	var keys, disabled listFlag
	flag.Var(&keys, "key", "API key as client_id:client_secret:org1,org2 (repeatable)")
	flag.Var(&disabled, "disabled-org", "organization whose rotation API is not enabled (repeatable)")
	flag.Parse()
	if *showVersion {
		fmt.Println("cisco-s3-sim", Version)
		return
	}

	cfg := ciscosim.Config{}
	if *configFile != "" {
		var err error
		if cfg, err = ciscosim.LoadConfig(*configFile); err != nil {
			log.Fatal(err)
		}
	}
	for _, k := range keys {
		parts := strings.SplitN(k, ":", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			log.Fatalf("-key %q: want client_id:client_secret:org1,org2", parts[0])
		}
		cfg.APIKeys = append(cfg.APIKeys, ciscosim.APIKey{ClientID: parts[0], ClientSecret: parts[1], OrgIDs: strings.Split(parts[2], ",")})
	}
	for _, o := range disabled {
		cfg.Orgs = append(cfg.Orgs, ciscosim.Org{ID: o, Disabled: true})
	}
	if *tokenTTL > 0 {
		cfg.TokenTTL = *tokenTTL
	}
	if *propagation > 0 {
		cfg.PropagationDelay = *propagation
	}
	cfg.NoRateLimits = cfg.NoRateLimits || *noLimits
	demo := len(cfg.APIKeys) == 0
	if demo {
		cfg.APIKeys = []ciscosim.APIKey{{ClientID: "demo-client", ClientSecret: "demo-secret", OrgIDs: []string{"1234567"}}}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	sim := ciscosim.New(cfg)
	srv := &http.Server{Handler: logRequests(sim), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("cisco-s3-sim listening on http://%s\n", ln.Addr())
	fmt.Printf("the same address serves AWS STS and S3 (path style): aws --endpoint-url http://%s ...; keys and data paths: GET /_sim/state\n", ln.Addr())
	if cfg.PropagationDelay > 0 {
		fmt.Printf("new keys work in STS and S3 %s after they are issued\n", cfg.PropagationDelay)
	}
	if demo {
		fmt.Println("demo API key: client_id=demo-client client_secret=demo-secret org_id=1234567")
		org := sim.State().Orgs["1234567"]
		fmt.Printf("demo bucket: data_path=%s region=%s\n", org.DataPath, org.Region)
	}
	_ = os.Stdout.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// logRequests logs method, path and status; never headers or bodies.
func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Printf("%s %s %d", r.Method, r.URL.Path, rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Hijack lets the simulator drop connections through the logger.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijacking not supported")
	}
	r.status = 0
	return hj.Hijack()
}

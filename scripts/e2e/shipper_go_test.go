//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// TestMain runs the test binary as a long-running Go shipper when
// E2E_SHIPPER_LOG is set: the suite starts it as a process of its own.
func TestMain(m *testing.M) {
	if out := os.Getenv("E2E_SHIPPER_LOG"); out != "" {
		os.Exit(goShipper(out))
	}
	os.Exit(m.Run())
}

// goShipper lists the bucket every second through one aws-sdk-go-v2 client
// built once with the default credential chain, as Filebeat's and Elastic
// Agent's aws-s3 input do, and appends one line per listing to out (see
// shipperLine). It runs until it is stopped.
func goShipper(out string) int {
	log, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	// The endpoint and path style reach the simulator; the credentials are
	// the SDK's default chain, untouched.
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryMaxAttempts(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		endpoint := os.Getenv("E2E_S3_ENDPOINT")
		o.BaseEndpoint = &endpoint
		o.UsePathStyle = true
	})
	bucket, prefix := os.Getenv("E2E_BUCKET"), os.Getenv("E2E_PREFIX")+"/"
	for next := time.Now(); ; next = next.Add(time.Second) {
		time.Sleep(time.Until(next))
		start := time.Now()
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := client.ListObjectsV2(callCtx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
		cancel()
		detail := "-"
		if err != nil {
			detail = "error"
			var api smithy.APIError
			if errors.As(err, &api) {
				detail = api.ErrorCode()
			}
		}
		fmt.Fprintln(log, shipperLine(start, time.Now(), err == nil, detail))
	}
}

// shipperLine is a listing as every shipper logs it: start and end in Unix
// milliseconds, ok or fail, and the error code (or -).
func shipperLine(start, end time.Time, ok bool, detail string) string {
	result := "fail"
	if ok {
		result = "ok"
	}
	return fmt.Sprintf("%d %d %s %s", start.UnixMilli(), end.UnixMilli(), result, detail)
}

package backend

import (
	"context"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathMetrics(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "metrics/?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "metrics",
		},
		Callbacks: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation: b.pathMetricsRead,
		},
		HelpSynopsis:    pathMetricsHelpSyn,
		HelpDescription: pathMetricsHelpDesc,
	}}
}

func (b *backend) pathMetricsRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	b.refillDropped(ctx, req.Storage)
	names, _ := b.unreadableOrgs()
	body, err := b.metrics.render(b.fleet(b.now()), len(names))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: metricsContentType,
		logical.HTTPRawBody:     body,
		logical.HTTPStatusCode:  http.StatusOK,
	}}, nil
}

const pathMetricsHelpSyn = "The mount's Prometheus metrics, in the text exposition format."

const pathMetricsHelpDesc = `
Per organization (label name): cisco_s3_key_expiry_timestamp_seconds,
cisco_s3_key_creation_timestamp_seconds, cisco_s3_next_rotation_timestamp_seconds,
cisco_s3_key_stale, cisco_s3_rotation_consecutive_failures,
cisco_s3_last_successful_rotation_timestamp_seconds,
cisco_s3_key_verified_timestamp_seconds, cisco_s3_key_verify_failed,
cisco_s3_key_rejected, cisco_s3_key_last_checked_timestamp_seconds,
cisco_s3_key_check_interval_seconds and cisco_s3_key_missing; the counters
cisco_s3_rotations_total{name,trigger,result},
cisco_s3_key_checks_total{trigger,outcome} and
cisco_s3_cisco_requests_total{endpoint,code}; the histogram
cisco_s3_cisco_request_duration_seconds{endpoint}; and
cisco_s3_unreadable_entries. No secrets. Protected by ACL like any path:
Prometheus scrapes /v1/<mount>/metrics with a token that may read it.

The answer is not JSON, so a plain vault read cannot show it. From the
CLI:

  $ vault read -format=raw cisco-s3/metrics
`

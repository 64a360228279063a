#!/usr/bin/env bash
# Splunk Add-on for AWS: sets an AWS account's key through the add-on's REST
# endpoint, which keeps it in Splunk's credential store.
# https://splunk.github.io/splunk-add-on-for-amazon-web-services/APIreference/
# Untested against Splunk: the end-to-end suite runs it against a local
# endpoint that records the call.
#   SPLUNK_URL          https://splunk.example.com:8089 (the management port)
#   SPLUNK_AWS_ACCOUNT  the add-on's account name
#   SPLUNK_TOKEN_FILE   a Splunk authentication token (default /etc/cisco-s3/splunk.token)
. "$(dirname "$0")/cisco-s3-push.sh"
: "${SPLUNK_URL:?}" "${SPLUNK_AWS_ACCOUNT:?}"
auth header "Authorization: Bearer $(< "${SPLUNK_TOKEN_FILE:-/etc/cisco-s3/splunk.token}")"
id=$(key access_key_id)
secret=$(key secret_access_key)
# The add-on checks a new key with AWS STS before it stores it, and a new
# key may be refused for some seconds: a 400 is tried again, 4 times in all
# (at most 110 s).
for attempt in 1 2 3 4; do
  [ "$attempt" = 1 ] || sleep 10
  code=$(call POST "$SPLUNK_URL/servicesNS/nobody/Splunk_TA_aws/splunk_ta_aws_aws_account/$SPLUNK_AWS_ACCOUNT?output_mode=json" \
    --data-urlencode "key_id@$id" --data-urlencode "secret_key@$secret" --data-urlencode "category=1")
  is2xx "$code" && { echo "splunk: account $SPLUNK_AWS_ACCOUNT updated"; exit 0; }
  [ "$code" = 400 ] || break
done
die "splunk: HTTP $code"

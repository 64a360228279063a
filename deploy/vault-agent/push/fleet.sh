#!/usr/bin/env bash
# Elastic Fleet, Cisco Umbrella integration: sets the aws-s3 stream's
# access_key_id and secret_access_key of a package policy.
# https://www.elastic.co/docs/api/doc/kibana/operation/operation-put-fleet-package-policies-packagepolicyid
# Untested against Kibana.
#   KIBANA_URL, FLEET_PACKAGE_POLICY_ID
#   KIBANA_API_KEY_FILE   an API key (default /etc/cisco-s3/kibana.apikey)
. "$(dirname "$0")/cisco-s3-push.sh"
: "${KIBANA_URL:?}" "${FLEET_PACKAGE_POLICY_ID:?}"
auth header "Authorization: ApiKey $(< "${KIBANA_API_KEY_FILE:-/etc/cisco-s3/kibana.apikey}")"
url="$KIBANA_URL/api/fleet/package_policies/$FLEET_PACKAGE_POLICY_ID?format=simplified"
code=$(call GET "$url")
is2xx "$code" || die "fleet GET: HTTP $code"
jq -e '.item.inputs["cisco_umbrella-aws-s3"].streams["cisco_umbrella.log"].vars' "$TMP/body" > /dev/null ||
  die "fleet: package policy $FLEET_PACKAGE_POLICY_ID has no cisco_umbrella-aws-s3 input with a cisco_umbrella.log stream"
jq --slurpfile k "$KEYFILE" '.item
    | {name, namespace, description, policy_ids, package: {name: .package.name, version: .package.version}, vars, inputs}
    | with_entries(select(.value != null))
    | .inputs["cisco_umbrella-aws-s3"].streams["cisco_umbrella.log"].vars
        += {access_key_id: $k[0].access_key_id, secret_access_key: $k[0].secret_access_key}' \
  "$TMP/body" > "$TMP/put.json"
code=$(call PUT "$url" -H 'kbn-xsrf: true' -H 'Content-Type: application/json' --data-binary @"$TMP/put.json")
is2xx "$code" || die "fleet PUT: HTTP $code"
echo "fleet: package policy $FLEET_PACKAGE_POLICY_ID updated"

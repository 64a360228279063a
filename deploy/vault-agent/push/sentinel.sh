#!/usr/bin/env bash
# Microsoft Sentinel, Cisco Umbrella codeless connector: one data connector
# per log type holds the key (awsAccessKey, awsSecretKey); each is written
# back with the new key.
# https://learn.microsoft.com/rest/api/securityinsights/data-connectors/create-or-update
# Untested against Azure. The field names are the solution's template's
# (Azure-Sentinel, Solutions/CiscoUmbrella/Data Connectors/CiscoUmbrella_CCP).
#   AZ_SUB, AZ_RG, AZ_WS   subscription, resource group, workspace
#   ARM_TOKEN_FILE         an Azure Resource Manager token, kept fresh elsewhere
#                          (default /etc/cisco-s3/arm.token)
. "$(dirname "$0")/cisco-s3-push.sh"
: "${AZ_SUB:?}" "${AZ_RG:?}" "${AZ_WS:?}"
base=${ARM_URL:-https://management.azure.com}
connectors="$base/subscriptions/$AZ_SUB/resourceGroups/$AZ_RG/providers/Microsoft.OperationalInsights/workspaces/$AZ_WS/providers/Microsoft.SecurityInsights/dataConnectors"
version=${SENTINEL_API_VERSION:-2022-10-01-preview}
auth header "Authorization: Bearer $(< "${ARM_TOKEN_FILE:-/etc/cisco-s3/arm.token}")"
: > "$TMP/list"
page="$connectors?api-version=$version"
while [ -n "$page" ]; do
  code=$(call GET "$page")
  is2xx "$code" || die "sentinel list: HTTP $code"
  jq -c '.value[] | select(.kind == "AmazonWebServicesS3" and .properties.connectorDefinitionName == "CiscoUmbrellaConnector")' \
    "$TMP/body" >> "$TMP/list"
  page=$(jq -r '.nextLink // empty' "$TMP/body")
done
[ -s "$TMP/list" ] || die "sentinel: no CiscoUmbrellaConnector data connectors"
n=0
while read -r connector; do
  name=$(jq -r '.name | @uri' <<<"$connector")
  jq --slurpfile k "$KEYFILE" '{kind, etag, properties: (.properties
      + {awsAccessKey: $k[0].access_key_id, awsSecretKey: $k[0].secret_access_key})}' <<<"$connector" > "$TMP/put.json"
  code=$(call PUT "$connectors/$name?api-version=$version" -H 'Content-Type: application/json' --data-binary @"$TMP/put.json")
  is2xx "$code" || die "sentinel PUT $name: HTTP $code"
  n=$((n + 1))
done < "$TMP/list"
echo "sentinel: $n data connectors updated"

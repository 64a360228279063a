#!/usr/bin/env bash
# Sumo Logic hosted collector, Amazon S3 source: reads the source with its
# ETag, sets the key, and writes the whole source back with If-Match.
# https://www.sumologic.com/help/docs/api/collector-management/source-api/
# Untested against Sumo Logic.
#   SUMO_API            https://api.<deployment>.sumologic.com/api/v1
#   SUMO_COLLECTOR_ID, SUMO_SOURCE_ID
#   SUMO_ACCESS_FILE    accessId:accessKey (default /etc/cisco-s3/sumo.access)
. "$(dirname "$0")/cisco-s3-push.sh"
: "${SUMO_API:?}" "${SUMO_COLLECTOR_ID:?}" "${SUMO_SOURCE_ID:?}"
auth user "$(< "${SUMO_ACCESS_FILE:-/etc/cisco-s3/sumo.access}")"
url="$SUMO_API/collectors/$SUMO_COLLECTOR_ID/sources/$SUMO_SOURCE_ID"
code=$(call GET "$url")
is2xx "$code" || die "sumo GET: HTTP $code"
etag=$(awk 'tolower($1)=="etag:" { sub(/\r$/, ""); print $2 }' "$TMP/headers")
[ -n "$etag" ] || die "sumo: no ETag"
jq -e '[.source.thirdPartyRef.resources[]? | select(.authentication.type == "S3BucketAuthentication")] | length > 0' \
  "$TMP/body" > /dev/null || die "sumo: source $SUMO_SOURCE_ID has no S3BucketAuthentication (a role-based source?)"
jq --slurpfile k "$KEYFILE" '{source: (.source | .thirdPartyRef.resources |= map(
    if .authentication.type == "S3BucketAuthentication"
    then .authentication.awsId = $k[0].access_key_id | .authentication.awsKey = $k[0].secret_access_key
    else . end))}' "$TMP/body" > "$TMP/put.json"
code=$(call PUT "$url" -H 'Content-Type: application/json' -H "If-Match: $etag" --data-binary @"$TMP/put.json")
is2xx "$code" || die "sumo PUT: HTTP $code"
echo "sumo: source $SUMO_SOURCE_ID updated"

#!/usr/bin/env bash
# build-bao.sh SOURCE [VERSION] builds an OpenBao server (bao) from OpenBao's
# source into an ignored cache folder, once, and prints the path of the
# binary. SOURCE is a git repository or mirror of github.com/openbao/openbao
# (its tag vVERSION is built; default 2.6.2), or a source tree of that
# version. The Go module proxy serves no OpenBao server module, so this is
# the only way to get one here.
#
# The proxy refuses five cloud auto-unseal wrappers, so the build leaves
# them out: such a bao cannot auto-unseal with AliCloud KMS, AWS KMS, Azure
# Key Vault, GCP Cloud KMS or OCI KMS, which neither a dev server nor the
# compatibility suite uses. Nothing else changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:?usage: scripts/build-bao.sh SOURCE [VERSION], SOURCE being a git repository or source tree of OpenBao}
version=${2:-2.6.2}
out="$root/.cache/openbao-$version/bao"
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi
wrappers="alicloudkms awskms azurekeyvault gcpckms ocikms"
work=$(mktemp -d "${TMPDIR:-/tmp}/openbao-$version.XXXXXX")
trap 'rm -rf "$work"' EXIT
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" archive "v$version" | tar -x -C "$work"
else
  cp -a "$src/." "$work/"
fi
echo "building OpenBao $version into .cache/ (about 5 minutes on 2 cores, once), without the auto-unseal wrappers the Go module proxy refuses: $wrappers" >&2
cd "$work"
for w in $wrappers; do
  if [ -f helper/kmsplugin/wrapper.go ]; then
    # 2.6: a catalog of wrappers; drop their entries.
    sed -i "\#go-kms-wrapping/wrappers/$w/v2\"#d; /^[[:space:]]*$w\.Type:/d" helper/kmsplugin/wrapper.go
  else
    # 2.4 and 2.5: a function per wrapper; each of these says it is left out.
    awk -v w="$w" '
      /^(func|var) Get[A-Za-z]*KMSFunc/ { buf = $0 "\n"; infn = 1; next }
      infn { buf = buf $0 "\n"; if ($0 == "}") { infn = 0
        if (index(buf, w ".NewWrapper()")) { split(buf, l, "\n"); print l[1]
          print "\treturn nil, nil, errors.New(\"this build of OpenBao leaves out the " w " seal\")"; print "}" }
        else printf "%s", buf }
        next }
      $0 ~ "go-kms-wrapping/wrappers/" w "/v2\"" { next }
      { print }' internalshared/configutil/kms.go > kms.go.tmp
    mv kms.go.tmp internalshared/configutil/kms.go
  fi
  go mod edit -droprequire "github.com/openbao/go-kms-wrapping/wrappers/$w/v2"
done
# The Shamir seal took its logger through the AWS KMS wrapper's option.
sed -i '\#go-kms-wrapping/wrappers/awskms/v2"#d; /awskms\.WithLogger(/d' vault/core.go
if grep -rqE "go-kms-wrapping/wrappers/($(echo "$wrappers" | tr ' ' '|'))/" --include='*.go' .; then
  echo "OpenBao $version imports a left-out wrapper where this script does not look (it knows the layouts of 2.4 to 2.6)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X github.com/openbao/openbao/version.fullVersion=$version" -o "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"

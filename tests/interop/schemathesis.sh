#!/usr/bin/env bash
# schemathesis (https://schemathesis.readthedocs.io, 4.x) against the OpenAPI document a running
# hub serves at /api/v1/openapi.json, with a bearer token, every check but those excluded
# below, and a bounded number of examples per operation. Exits non-zero on any failure, or when
# schemathesis is not installed (.ci/run installs it).
#
# Usage: schemathesis.sh HUB_URL CA_FILE TOKEN      e.g. https://localhost:8443 pki/ca.crt.pem v4.public...
# Environment: SCHEMATHESIS_EXAMPLES (default 25), SCHEMATHESIS_SEED (default 8: the same cases
# every run, so that a failure can be reproduced).
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 HUB_URL CA_FILE TOKEN" >&2
  exit 2
fi
hub="$1" ca="$(realpath "$2")" token="$3"
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v schemathesis >/dev/null 2>&1; then
  echo "schemathesis is not installed: python3 -m pip install 'schemathesis>=4,<5'" >&2
  exit 1
fi

# Run in a scratch directory: schemathesis and Hypothesis keep their databases in the current one.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"

# Excluded operation: signOut (DELETE /api/v1/session) ends the very session every other request
# authenticates with; after it every answer is 401 and nothing else would be tested. Signing out
# is tested in tests/access.rs (the token is refused afterwards). alertStream (GET
# /api/v1/alerts/stream) is a Server-Sent Events stream that stays open by design: every request
# would time out; its answers per role are tested in tests/access.rs and its events in
# crates/vigil-hub/tests/rules_and_handshakes.rs.
#
# Excluded check: none (schemathesis.toml adds 413 to what counts as refusing a bad body). `--checks all` includes ignored_auth (each operation with no token and a
# wrong one must answer 401), use_after_free, ensure_resource_availability and
# object_level_authorization next to the conformance checks.
schemathesis --config-file "$here/schemathesis.toml" run "$hub/api/v1/openapi.json" \
  --tls-verify "$ca" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --exclude-operation-id signOut \
  --exclude-operation-id alertStream \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
  --seed "${SCHEMATHESIS_SEED:-8}" \
  --workers 2 \
  --request-timeout 10 \
  --report-dir "$scratch/report"

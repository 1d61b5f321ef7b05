#!/usr/bin/env bash
# Deploys s3-sync-service with the CDK stack in infra/, to the account of the current AWS credentials.
# Builds the forwarder bundle, tests the stack, bootstraps CDK in the account (a no-op after the
# first time), then `cdk deploy`, which builds the service's image from the Dockerfile and pushes it.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: infra/deploy.sh --environment dev|prod --stack-name NAME [options]

  --environment dev|prod     log retention, replicas and removal policies of that environment
  --stack-name NAME          the suffix in every resource name (the stack is S3Sync-NAME)
  --region REGION            AWS region (default: AWS_REGION, else the CLI's)
  --webhook-secret-name ID   Secrets Manager secret holding the webhook secret (required)
  --auth-url URL             downstream login (AUTH_URL)
  --calldetails-url URL      downstream records API (CALL_DETAILS_URL)
  --nifi-endpoint-url URL    ingest endpoint for bundles (NIFI_ENDPOINT_URL)
  --replicas N               service tasks (default: 1 in dev, 2 in prod)
  --access-key-param NAME    SSM parameter with ACCESS_KEY
  --secret-key-param NAME    SSM parameter with SECRET_KEY
  --nifi-secret-name ID      Secrets Manager secret with the NiFi credentials
  --dry-run                  print the commands instead of running them
  --help                     this text
USAGE
}

die() { echo "deploy.sh: $*" >&2; echo "Try --help." >&2; exit 64; }

environment='' stack='' region=${AWS_REGION:-} dry_run=false
context=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help) usage; exit 0 ;;
    --dry-run) dry_run=true; shift; continue ;;
  esac
  # An option in the value's place is a missing value, never the value: `--region --dry-run`
  # must not take the dry run away.
  [ $# -ge 2 ] && [[ $2 != --* ]] || die "$1 needs a value"
  case "$1" in
    --environment) environment=$2 ;;
    --stack-name) stack=$2 ;;
    --region) region=$2 ;;
    --webhook-secret-name) context+=(-c "webhookSecretName=$2") ;;
    --auth-url) context+=(-c "authUrl=$2") ;;
    --calldetails-url) context+=(-c "callDetailsUrl=$2") ;;
    --nifi-endpoint-url) context+=(-c "nifiEndpointUrl=$2") ;;
    --replicas) [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--replicas must be a positive whole number, not $2"; context+=(-c "replicas=$2") ;;
    --access-key-param) context+=(-c "accessKeyParameter=$2") ;;
    --secret-key-param) context+=(-c "secretKeyParameter=$2") ;;
    --nifi-secret-name) context+=(-c "nifiSecretName=$2") ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
case "$environment" in dev | prod) ;; '') die "--environment is required" ;; *) die "--environment must be dev or prod, not $environment" ;; esac
[[ $stack =~ ^[a-z0-9][a-z0-9-]{0,20}$ ]] || die "--stack-name is required: lower-case letters, digits and dashes, 21 at most"
printf '%s\n' "${context[@]}" | grep -q '^webhookSecretName=' || die "--webhook-secret-name is required"

root=$(cd "$(dirname "$0")/.." && pwd)
run() {
  if $dry_run; then printf '%q' "$1"; printf ' %q' "${@:2}"; echo; else "$@"; fi
}
if [ -n "$region" ]; then
  export AWS_REGION=$region
  $dry_run && echo "export AWS_REGION=$region"
fi
run npm --prefix "$root" ci --no-audit --no-fund
run npm --prefix "$root" run build:lambda
run npm --prefix "$root/infra" ci --no-audit --no-fund
run npm --prefix "$root/infra" test
cd "$root/infra"
run npx cdk bootstrap
run npx cdk deploy "S3Sync-$stack" -c env="$environment" -c suffix="$stack" "${context[@]}" \
  --require-approval "${REQUIRE_APPROVAL:-broadening}" --outputs-file "cdk-outputs-$stack.json"

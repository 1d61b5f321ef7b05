#!/usr/bin/env bash
# Deploys s3-sync-service to the AWS account and region of the current credentials:
#   infra/deploy.sh <dev|prod> <suffix> [extra cdk -c key=value ...]
# e.g. infra/deploy.sh prod eu1 -c webhookSecretName=prod/s3-sync/webhook -c callDetailsUrl=https://api.example.com/calls
# Builds the forwarder bundle, installs the stack's dependencies, bootstraps the account for CDK
# (once; a no-op after), then deploys: `cdk deploy` builds the service's image from the Dockerfile
# and pushes it to the bootstrap repository. Needs Docker and credentials allowed to deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
env=${1:?usage: infra/deploy.sh <dev|prod> <suffix> [-c key=value ...]}
suffix=${2:?usage: infra/deploy.sh <dev|prod> <suffix> [-c key=value ...]}
shift 2
case "$env" in dev | prod) ;; *) echo "environment must be dev or prod, not $env" >&2; exit 64 ;; esac

npm ci --no-audit --no-fund
npm run build:lambda
cd infra
npm ci --no-audit --no-fund
npm test
npx cdk bootstrap
npx cdk deploy "S3Sync-$suffix" -c env="$env" -c suffix="$suffix" "$@" --require-approval "${REQUIRE_APPROVAL:-broadening}" --outputs-file "cdk-outputs-$suffix.json"
echo "outputs in infra/cdk-outputs-$suffix.json"

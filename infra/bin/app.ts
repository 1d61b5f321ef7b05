#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { join } from 'node:path';
import { Environment, NotificationWiring, S3SyncStack } from '../lib/s3-sync-stack';

/**
 * `cdk deploy -c env=prod -c suffix=eu1 -c webhookSecretName=prod/s3-sync/webhook [...]`: one stack
 * per environment and suffix. Every setting comes from the context (cdk.json or -c), none from code.
 */
const app = new App();
const ctx = (name: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(name);
  return typeof value === 'string' && value !== '' ? value : undefined;
};
const required = (name: string): string => {
  const value = ctx(name);
  if (!value) throw new Error(`context ${name} is required (-c ${name}=...)`);
  return value;
};
const environment = (ctx('env') ?? 'dev') as Environment;
if (environment !== 'dev' && environment !== 'prod') throw new Error('context env must be dev or prod');
const suffix = ctx('suffix') ?? environment;
const root = join(__dirname, '..', '..');

new S3SyncStack(app, `S3Sync-${suffix}`, {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  environment,
  suffix,
  tags: ctx('tags') ? (JSON.parse(ctx('tags')!) as Record<string, string>) : undefined,
  notifications: (ctx('notifications') ?? 'queue') as NotificationWiring,
  glacierAfterDays: ctx('glacierAfterDays') ? Number(ctx('glacierAfterDays')) : undefined,
  replicas: ctx('replicas') ? Number(ctx('replicas')) : undefined,
  imageDirectory: root,
  forwarderCodeDirectory: join(root, 'lambda', 'dist'),
  secrets: {
    webhookSecretName: required('webhookSecretName'),
    accessKeyParameter: ctx('accessKeyParameter'),
    secretKeyParameter: ctx('secretKeyParameter'),
    nifiSecretName: ctx('nifiSecretName'),
  },
  delivery: { callDetailsUrl: ctx('callDetailsUrl'), authUrl: ctx('authUrl'), nifiEndpointUrl: ctx('nifiEndpointUrl') },
});

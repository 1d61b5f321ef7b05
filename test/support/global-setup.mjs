// Starts the S3 emulator once for the whole e2e run, on a random loopback port; specs read its
// endpoint from the environment (workers inherit it).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dynalite from 'dynalite';
import { startEmulator } from './emulator.mjs';

export default async function globalSetup() {
  const emulator = await startEmulator();
  globalThis.__S3_EMULATOR__ = emulator;
  process.env.TEST_S3_ENDPOINT = emulator.endpoint;
  // DynamoDB for the shared state of replicas: dynalite in memory, on loopback.
  const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise((resolve) => dynamo.listen(0, '127.0.0.1', resolve));
  globalThis.__DYNALITE__ = dynamo;
  process.env.TEST_DYNAMODB_ENDPOINT = `http://127.0.0.1:${dynamo.address().port}`;
  // Every directory a spec makes (mirrors, state, child processes' homes) lives under this one,
  // which the teardown removes, so runs leave nothing behind in the system's temporary directory.
  process.env.TEST_TMP_ROOT = mkdtempSync(join(tmpdir(), 's3sync-e2e-'));
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  process.env.AWS_REGION = 'us-east-1';
  // The SDK warns once per process on Node 20; the warning is about its future, not this run.
  process.env.AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING ??= '1';
}

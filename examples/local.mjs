// `npm run local`: an embedded S3 endpoint seeded from examples/bucket, and the service against it
// on the embedded SQLite store with periodic sync on. Ctrl-C stops both.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { s3Client, seedBucket, startEmulator, TEST_CREDENTIALS } from '../test/support/emulator.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bucket = process.env.S3_BUCKET_NAME ?? 'example-bucket';
const s3Port = Number(process.env.LOCAL_S3_PORT ?? 4566);

const emulator = await startEmulator({ port: s3Port });
emulator.server.createBucket(bucket);
const keys = await seedBucket(s3Client(emulator.endpoint), bucket, join(root, 'examples', 'bucket'));

const env = {
  AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  AWS_REGION: 'us-east-1',
  S3_BUCKET_NAME: bucket,
  S3_ENDPOINT: emulator.endpoint,
  LOCAL_DOWNLOAD_DIR: join(root, 'data', 'mirror'),
  STATE_DIR: join(root, 'data', 'state'),
  ENABLE_PERIODIC_SYNC: 'true',
  SYNC_CRON: '*/30 * * * * *',
  SYNC_ON_START: 'true',
  API_HOST: '127.0.0.1',
  LOG_FORMAT: 'pretty',
  // A local-only secret so that the event webhook can be tried (see the README's real-time section).
  WEBHOOK_SECRET: 'local-webhook-secret-not-for-production',
  ...process.env,
};
const port = env.API_PORT ?? '8888';
env.API_PORT = port;

const app = spawn(process.execPath, [join(root, 'dist', 'main.js')], { env, stdio: 'inherit', cwd: root });
process.stdout.write(
  [
    '',
    `  S3 endpoint  ${emulator.endpoint}  (bucket "${bucket}", ${keys.length} example objects)`,
    `  API          http://127.0.0.1:${port}/api/v1   e.g. curl -X POST http://127.0.0.1:${port}/api/v1/sync`,
    `  Swagger      http://127.0.0.1:${port}/docs`,
    `  Mirror       ${env.LOCAL_DOWNLOAD_DIR}  (synced every 30 s)`,
    `  Webhook      POST http://127.0.0.1:${port}/api/v1/s3-notification  (WEBHOOK_SECRET=${env.WEBHOOK_SECRET})`,
    '  Ctrl-C stops everything.',
    '',
  ].join('\n') + '\n',
);

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  if (app.exitCode === null) app.kill('SIGTERM');
  await new Promise((resolve) => (app.exitCode === null ? app.once('exit', resolve) : resolve()));
  await emulator.stop();
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
app.on('exit', (code) => void stop(code ?? 0));

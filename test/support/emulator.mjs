// S3 emulator for tests, benchmarks and the local run. fauxqs is ESM-only and its CLI binds 0.0.0.0
// with request logging forced on, so it is started in-process on loopback with the logger off.
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startFauxqs } from 'fauxqs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** Starts fauxqs on 127.0.0.1 (port 0 = random) and returns its endpoint. */
export async function startEmulator({ port = 0, host = '127.0.0.1' } = {}) {
  const server = await startFauxqs({ port, host, logger: false });
  const endpoint = `http://${host}:${server.port}`;
  return { server, endpoint, port: server.port, stop: () => server.stop() };
}

export function s3Client(endpoint, region = 'us-east-1') {
  return new S3Client({ endpoint, region, forcePathStyle: true, credentials: TEST_CREDENTIALS });
}

async function* walk(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

/** Uploads every file under `dir` to `bucket`, the key being its path relative to `dir`. */
export async function seedBucket(client, bucket, dir) {
  const keys = [];
  for await (const path of walk(dir)) {
    const key = relative(dir, path).split(sep).join('/');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(path) }));
    keys.push(key);
  }
  return keys;
}

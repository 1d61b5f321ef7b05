import { constants as zlibConstants, createGzip } from 'node:zlib';
import type { FakeDownstream } from './fake-downstream';
import { mirrorServiceEnv } from './process';

/** JSON Lines records `{ id: "<tag>-<n>", n }` for n in [from, to). */
export const jsonl = (from: number, to: number, tag = 'r'): string =>
  Array.from({ length: to - from }, (_, i) => JSON.stringify({ id: `${tag}-${from + i}`, n: from + i })).join('\n') + '\n';

/** The environment of a service in its own process that syncs at start and delivers to `down`. */
export function serviceEnv(bucket: string, down: FakeDownstream, name: string): Record<string, string> {
  return {
    ...mirrorServiceEnv(bucket, name),
    SYNC_ON_START: 'true',
    CALL_DETAILS_URL: down.recordsUrl,
    AUTH_URL: down.authUrl,
    ACCESS_KEY: down.accessKey,
    SECRET_KEY: down.secretKey,
  };
}

/**
 * JSON Lines of at least `bytes` (about 512 bytes per record, `n` counting from 0), gzip-compressed
 * as it is generated: the object stays small in the emulator while the service reads the full size.
 */
export async function bigGzippedJsonl(bytes: number): Promise<{ body: Buffer; records: number }> {
  const gzip = createGzip({ level: zlibConstants.Z_BEST_SPEED });
  const out: Buffer[] = [];
  gzip.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve, reject) => gzip.once('end', resolve).once('error', reject));
  const pad = 'x'.repeat(440);
  let records = 0;
  for (let written = 0; written < bytes;) {
    const lines: string[] = [];
    for (let i = 0; i < 16_384; i++) lines.push(JSON.stringify({ id: `call-${records + i}`, n: records + i, pad }));
    records += lines.length;
    const chunk = lines.join('\n') + '\n';
    written += chunk.length;
    if (!gzip.write(chunk)) await new Promise((r) => gzip.once('drain', r));
  }
  gzip.end();
  await done;
  return { body: Buffer.concat(out), records };
}

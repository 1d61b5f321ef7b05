import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Spool } from './bundle.builder';

describe('Spool', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'spool-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const fill = async (limit: number, chunks: string[]) => {
    const spool = new Spool(limit, join(dir, 'bundle.gz'));
    await pipeline(Readable.from(chunks.map((c) => Buffer.from(c))), spool);
    return spool.result();
  };

  it('keeps a body up to the limit in memory', async () => {
    expect(await fill(10, ['12345', '67890'])).toEqual({ kind: 'memory', data: Buffer.from('1234567890') });
  });

  it('moves to a file beyond the limit, keeping what came before', async () => {
    const result = await fill(10, ['12345', '67890', 'abc', 'def']);
    expect(result).toEqual({ kind: 'file', path: join(dir, 'bundle.gz'), length: 16 });
    expect(readFileSync(join(dir, 'bundle.gz'), 'utf8')).toBe('1234567890abcdef');
  });
});

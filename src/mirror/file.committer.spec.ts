import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntegrityError } from '../common/errors';
import { FileCommitter } from './file.committer';
import { createFlusher, FLUSH_POLICY } from './file-commit.worker';

const md5 = (bytes: Uint8Array): string => createHash('md5').update(bytes).digest('hex');

describe('FileCommitter (real worker threads, real files)', () => {
  let dir: string;
  let committer: FileCommitter;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'committer-'));
    committer = new FileCommitter();
  });
  afterEach(async () => {
    await committer.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes many files committed in the same turn, each whole, with its mtime, and no temporary file left', async () => {
    const mtime = new Date('2024-05-06T07:08:09.000Z');
    const files = Array.from({ length: 100 }, (_, i) => ({ name: `f${i}`, bytes: Buffer.alloc(1000 + i * 37, i) }));
    await Promise.all(
      files.map((f) =>
        committer.commit(
          f.name,
          join(dir, `.${f.name}.tmp`),
          join(dir, f.name),
          [f.bytes.subarray(0, 500), f.bytes.subarray(500)],
          mtime,
          md5(f.bytes),
        ),
      ),
    );
    for (const f of files) {
      expect(readFileSync(join(dir, f.name)).equals(f.bytes)).toBe(true);
      expect(statSync(join(dir, f.name)).mtime.toISOString()).toBe(mtime.toISOString());
    }
    expect(readdirSync(dir).sort()).toEqual(files.map((f) => f.name).sort());
  });

  it('reads chunks over shared memory in place', async () => {
    const shared = new Uint8Array(new SharedArrayBuffer(4096)).fill(7);
    await committer.commit('s', join(dir, '.s.tmp'), join(dir, 's'), [shared.subarray(0, 3000)], new Date(), md5(shared.subarray(0, 3000)));
    expect(readFileSync(join(dir, 's'))).toEqual(Buffer.alloc(3000, 7));
  });

  it('refuses a file whose MD5 differs, writes nothing, and leaves the files of the same batch committed', async () => {
    writeFileSync(join(dir, 'bad'), 'previous version');
    const good = Buffer.from('good bytes');
    const results = await Promise.allSettled([
      committer.commit(
        'bad',
        join(dir, '.bad.tmp'),
        join(dir, 'bad'),
        [Buffer.from('corrupted')],
        new Date(),
        md5(Buffer.from('expected')),
      ),
      committer.commit('good', join(dir, '.good.tmp'), join(dir, 'good'), [good], new Date(), md5(good)),
    ]);
    expect(results[0].status).toBe('rejected');
    const reason = (results[0] as PromiseRejectedResult).reason as unknown;
    expect(reason).toBeInstanceOf(IntegrityError);
    expect(String((reason as Error).message)).toMatch(/^bad: md5 mismatch/);
    expect(results[1].status).toBe('fulfilled');
    expect(readFileSync(join(dir, 'bad'), 'utf8')).toBe('previous version');
    expect(readdirSync(dir).sort()).toEqual(['bad', 'good']);
  });

  it('reports a failed write with its errno code and removes the temporary file', async () => {
    // The target is a directory that is not empty: the rename fails after the bytes were written and synced.
    mkdirSync(join(dir, 'clash'));
    writeFileSync(join(dir, 'clash', 'inner'), 'x');
    await expect(
      committer.commit('clash', join(dir, '.clash.tmp'), join(dir, 'clash'), [Buffer.from('data')], new Date()),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/) });
    expect(readdirSync(dir)).toEqual(['clash']);
  });

  it('hashes a byte range of a file', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
    writeFileSync(join(dir, 'big'), bytes);
    const start = 1000;
    const length = 2 * 1024 * 1024 + 3;
    const digest = await committer.md5OfRange(join(dir, 'big'), start, length);
    expect(digest.toString('hex')).toBe(md5(bytes.subarray(start, start + length)));
    await expect(committer.md5OfRange(join(dir, 'big'), bytes.length - 10, 20)).rejects.toThrow(/10 bytes missing/);
  });
});

describe("the commit worker's flush policy", () => {
  it('flushes in the thread while flushes are fast, sends the next ones to the pool after a slow one, then times one again', async () => {
    let nowNs = 0;
    let syncFlushNs = 5_000;
    const calls: string[] = [];
    const flush = createFlusher(
      (fd) => {
        calls.push(`in thread ${fd}`);
        nowNs += syncFlushNs;
      },
      (fd) => {
        calls.push(`pooled ${fd}`);
        return Promise.resolve();
      },
      () => nowNs,
    );
    expect(flush(1)).toBeUndefined();
    expect(flush(2)).toBeUndefined();
    syncFlushNs = FLUSH_POLICY.FAST_FLUSH_NS + 1;
    expect(flush(3)).toBeUndefined();
    for (let i = 0; i < FLUSH_POLICY.POOLED_FLUSHES; i++) await expect(flush(100 + i)).resolves.toBeUndefined();
    syncFlushNs = 1_000;
    expect(flush(4)).toBeUndefined();
    expect(flush(5)).toBeUndefined();
    expect(calls.filter((c) => c.startsWith('in thread'))).toEqual([
      'in thread 1',
      'in thread 2',
      'in thread 3',
      'in thread 4',
      'in thread 5',
    ]);
    expect(calls.filter((c) => c.startsWith('pooled'))).toHaveLength(FLUSH_POLICY.POOLED_FLUSHES);
    expect(calls.indexOf('pooled 100')).toBe(3);
  });
});

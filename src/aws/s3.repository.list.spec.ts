import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SystemClock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { validateEnv } from '../config/env.schema';
import { type ListedObject, S3Repository } from './s3.repository';
import { eventually } from '../../test/support/app';

const page = (keys: string[], next?: string): string =>
  '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>' +
  `<IsTruncated>${next ? 'true' : 'false'}</IsTruncated>${next ? `<NextContinuationToken>${next}</NextContinuationToken>` : ''}` +
  keys
    .map((k) => `<Contents><Key>${k}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e"</ETag><Size>1</Size></Contents>`)
    .join('') +
  '</ListBucketResult>';

const keysOf = (result: IteratorResult<ListedObject[]>): string[] | undefined => (result.done ? undefined : result.value.map((o) => o.key));

describe('S3Repository.list', () => {
  const tokens: Array<string | null> = [];
  let failSecond = false;
  let server: http.Server;
  let endpoint: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('continuation-token');
      tokens.push(token);
      if (token === 't2' && failSecond) {
        res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code><Message>no</Message></Error>');
        return;
      }
      const body = token === null ? page(['a'], 't2') : token === 't2' ? page(['b'], 't3') : page(['c']);
      res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    tokens.length = 0;
    failSecond = false;
  });

  const repository = (): S3Repository =>
    new S3Repository(
      new AppConfig(
        validateEnv({
          S3_BUCKET_NAME: 'list-bucket',
          S3_ENDPOINT: endpoint,
          AWS_ACCESS_KEY_ID: 'k',
          AWS_SECRET_ACCESS_KEY: 's',
          RETRY_ATTEMPTS: '0',
        }),
      ),
      new SystemClock(),
    );

  it('asks for the next page while the one it handed over is worked on, and yields every page in order', async () => {
    const s3 = repository();
    const pages = s3.list('');
    expect(keysOf(await pages.next())).toEqual(['a']);
    // Nobody has asked for page two yet, and its request is out.
    await eventually(
      () => tokens.length,
      (n) => n === 2,
      5000,
      'the second page request',
    );
    expect(tokens).toEqual([null, 't2']);
    expect(keysOf(await pages.next())).toEqual(['b']);
    expect(keysOf(await pages.next())).toEqual(['c']);
    expect((await pages.next()).done).toBe(true);
    expect(tokens).toEqual([null, 't2', 't3']);
    s3.onApplicationShutdown();
  });

  it('reports a page that failed ahead of time when it is asked for, not before', async () => {
    failSecond = true;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const s3 = repository();
    try {
      const pages = s3.list('');
      await pages.next();
      await eventually(
        () => tokens.length,
        (n) => n === 2,
        5000,
        'the second page request',
      );
      // The refusal has arrived; a turn of the event loop lets a rejection nobody handles be reported.
      await new Promise((r) => setImmediate(r));
      await expect(pages.next()).rejects.toThrow(/AccessDenied/);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      s3.onApplicationShutdown();
    }
  });
});

import { SignatureV4 } from '@smithy/signature-v4';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { validateEnv } from '../config/env.schema';
import { S3Repository } from './s3.repository';
import { Sha256 } from '../../test/support/sdk-sha256';
import { loopbackCertificate } from '../../test/support/tls';
import { startConnectProxy } from '../../test/support/connect-proxy';

const CREDENTIALS = { accessKeyId: 'AKIAWIRETEST', secretAccessKey: 'wire/secret+key==', sessionToken: 'session/token+with=chars' };
const SIGNED_AT = new Date('2026-12-03T08:09:10Z');

class FixedClock extends Clock {
  now(): Date {
    return new Date(SIGNED_AT);
  }
  sleep(): Promise<void> {
    return Promise.resolve();
  }
}

interface Received {
  method: string;
  url: string;
  headers: Record<string, string>;
}

/** S3's canonical encoding of a key, written out from the SigV4 documentation: every byte but A-Z a-z 0-9 - . _ ~ and "/". */
const expectedKeyPath = (key: string): string =>
  key
    .split('/')
    .map((segment) =>
      [...Buffer.from(segment)]
        .map((b) =>
          /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
        )
        .join(''),
    )
    .join('/');

/** What @smithy/signature-v4, the SDK's signer, would put in Authorization for this exact request. */
async function oracleAuthorization(req: Received, region: string): Promise<string> {
  const url = new URL(req.url, 'https://placeholder');
  const query: Record<string, string> = {};
  url.searchParams.forEach((v, k) => (query[k] = v));
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(req.headers.authorization)![1].split(';');
  const headers = Object.fromEntries(signedHeaders.map((name) => [name, req.headers[name]]));
  const signed = await new SignatureV4({
    credentials: CREDENTIALS,
    region,
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  }).sign(
    { method: 'GET', protocol: 'https:', hostname: req.headers.host, path: url.pathname, query, headers },
    { signingDate: SIGNED_AT },
  );
  return signed.headers.authorization;
}

describe('S3Repository on the wire (HTTPS, a private CA, signature checked against the SDK signer)', () => {
  const dir = mkdtempSync(join(tmpdir(), 's3-wire-'));
  const received: Received[] = [];
  let server: https.Server;
  let origin: string;
  let caPath: string;

  beforeAll(async () => {
    // AWS's own name too, reached through a CONNECT proxy (below): the production endpoint on the wire.
    const { key, cert, certPath } = loopbackCertificate(dir, 's3.test', ['*.s3.eu-south-2.amazonaws.com']);
    caPath = certPath;
    server = https.createServer({ key, cert }, (req, res) => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers as Record<string, string> });
      if (new URL(req.url ?? '/', 'https://x').searchParams.has('list-type')) {
        const xml = '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>';
        res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) }).end(xml);
        return;
      }
      res
        .writeHead(200, { etag: '"0cc175b9c0f1b6a831c399e269772661"', 'content-length': 1, 'last-modified': SIGNED_AT.toUTCString() })
        .end('a');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => (received.length = 0));

  const repository = (env: Record<string, string>): S3Repository =>
    new S3Repository(
      new AppConfig(
        validateEnv({
          AWS_REGION: 'eu-south-2',
          AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
          AWS_SESSION_TOKEN: CREDENTIALS.sessionToken,
          AWS_CA_BUNDLE: caPath,
          ...env,
        }),
      ),
      new FixedClock(),
    );

  const KEYS = [
    'plain.txt',
    'with space.txt',
    'a+b=c&d.txt',
    '100%.txt',
    "star*tilde~bang!quote'(paren).txt",
    'q?hash#.txt',
    'café/日本/データ.json',
    'trailing.',
    'double//slash',
    'equals=/semi;colon,comma@at$dollar',
  ];

  it.each([
    ['path style on a custom endpoint', { S3_BUCKET_NAME: 'wire-bucket' }, '', '/wire-bucket'],
    [
      'a bucket with dots, which stays path style over HTTPS',
      { S3_BUCKET_NAME: 'wire.dotted.bucket', S3_FORCE_PATH_STYLE: 'false' },
      '',
      '/wire.dotted.bucket',
    ],
    ['a custom endpoint with a base path', { S3_BUCKET_NAME: 'wire-bucket' }, '/gateway/s3', '/gateway/s3/wire-bucket'],
  ])('%s: the exact request line, Host, x-amz-* headers and the SDK signer’s signature', async (_name, env, basePath, bucketPath) => {
    await exchangeAll(repository({ ...env, S3_ENDPOINT: `${origin}${basePath}` }));
    await expectSigned(new URL(origin).host, bucketPath);
  });

  it('virtual-hosted on AWS’s own endpoint (no S3_ENDPOINT), reached through a CONNECT proxy: the same exactness', async () => {
    const proxy = await startConnectProxy({ to: () => (server.address() as AddressInfo).port });
    try {
      await exchangeAll(repository({ S3_BUCKET_NAME: 'wire-bucket', HTTPS_PROXY: proxy.url }));
      // Every connection is a tunnel to the bucket's host (a discarded body closes its connection).
      expect(new Set(proxy.connects.map((c) => c.url))).toEqual(new Set(['wire-bucket.s3.eu-south-2.amazonaws.com:443']));
      await expectSigned('wire-bucket.s3.eu-south-2.amazonaws.com', '');
    } finally {
      await proxy.close();
    }
  });

  /** A listing page and a GET of every key in KEYS, one after another. */
  async function exchangeAll(s3: S3Repository): Promise<void> {
    try {
      await s3.listPage('logs/2026 11/a+b', 'token/+=', 1000);
      for (const key of KEYS) {
        const object = await s3.getObject(key, { expectedSize: 1 });
        object.body.discard();
      }
    } finally {
      s3.onApplicationShutdown();
    }
  }

  /** What exchangeAll sent: the request lines, Host, the x-amz-* headers and each signature the SDK signer would make. */
  async function expectSigned(host: string, bucketPath: string): Promise<void> {
    const mismatched: string[] = [];
    for (const req of received) if (req.headers.authorization !== (await oracleAuthorization(req, 'eu-south-2'))) mismatched.push(req.url);
    expect(mismatched).toEqual([]);
    expect(received.map((r) => r.url)).toEqual([
      `${bucketPath || '/'}?continuation-token=token%2F%2B%3D&list-type=2&max-keys=1000&prefix=logs%2F2026%2011%2Fa%2Bb`,
      ...KEYS.map((key) => `${bucketPath}/${expectedKeyPath(key)}`),
    ]);
    for (const req of received) {
      expect(req.method).toBe('GET');
      expect(req.headers.host).toBe(host);
      expect(req.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(req.headers['x-amz-date']).toBe('20261203T080910Z');
      expect(req.headers['x-amz-security-token']).toBe(CREDENTIALS.sessionToken);
      expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAWIRETEST\/20261203\/eu-south-2\/s3\/aws4_request, /);
    }
  }
});

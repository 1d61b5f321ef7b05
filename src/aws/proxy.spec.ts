import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BodySink, HttpGetClient } from './http-get';
import { describeProxy, openTunnel, proxyFor, type ProxySettings } from './proxy';
import { startConnectProxy } from '../../test/support/connect-proxy';

const settings = (noProxy: string[] = [], extra: Partial<ProxySettings> = {}): ProxySettings => ({
  httpsProxy: 'http://proxy.corp:3128',
  httpProxy: 'http://plain.corp:8080',
  noProxy,
  ...extra,
});
const via = (url: string, s: ProxySettings): string | undefined => proxyFor(new URL(url), s)?.href;

describe('proxyFor', () => {
  it('takes HTTPS_PROXY for https targets and HTTP_PROXY for http ones; host:port means http://', () => {
    expect(via('https://s3.eu-west-1.amazonaws.com/b/k', settings())).toBe('http://proxy.corp:3128/');
    expect(via('http://minio.corp:9000/b/k', settings())).toBe('http://plain.corp:8080/');
    expect(via('https://s3.amazonaws.com', settings([], { httpsProxy: 'proxy.corp:3128' }))).toBe('http://proxy.corp:3128/');
    expect(via('http://minio.corp:9000', settings([], { httpProxy: undefined }))).toBeUndefined();
  });

  it('never proxies this machine: localhost and loopback addresses', () => {
    for (const url of [
      'https://localhost:9000',
      'https://a.localhost',
      'https://127.0.0.1:4566',
      'https://127.8.9.1',
      'https://[::1]:443',
    ]) {
      expect(via(url, settings())).toBeUndefined();
    }
  });

  it.each([
    ['*', 'https://s3.amazonaws.com', true],
    ['amazonaws.com', 'https://s3.us-east-1.amazonaws.com', true],
    ['amazonaws.com', 'https://amazonaws.com', true],
    ['.amazonaws.com', 'https://bucket.s3.amazonaws.com', true],
    ['*.amazonaws.com', 'https://bucket.s3.amazonaws.com', true],
    ['amazonaws.com', 'https://notamazonaws.com', false],
    ['s3.amazonaws.com', 'https://amazonaws.com', false],
    ['S3.AmazonAWS.com', 'https://s3.amazonaws.com', true],
    ['minio.corp:9000', 'https://minio.corp:9000', true],
    ['minio.corp:9000', 'https://minio.corp:9443', false],
    ['10.1.2.3', 'https://10.1.2.3', true],
    ['10.1.2.3', 'https://10.1.2.4', false],
    ['10.0.0.0/8', 'https://10.200.3.4:9000', true],
    ['10.0.0.0/8', 'https://11.0.0.1', false],
    ['10.0.0.0/8', 'https://ten.corp', false],
    ['fd00::/8', 'https://[fd12::1]', true],
    ['[fd12::1]:443', 'https://[fd12::1]', true],
    ['', 'https://s3.amazonaws.com', false],
  ])('NO_PROXY=%s for %s bypasses: %s', (entry, url, bypassed) => {
    expect(via(url, settings(entry ? [entry] : []))).toBe(bypassed ? undefined : 'http://proxy.corp:3128/');
  });

  it('says where a proxy is without its credentials', () => {
    expect(describeProxy(new URL('http://user:p%40ss@proxy.corp:3128'))).toBe('http://proxy.corp:3128');
  });
});

describe('HttpGetClient through a CONNECT proxy', () => {
  const body = Buffer.alloc(3 * 1024 * 1024 + 17, 'x').fill('0123456789abcdef');
  let origin: http.Server;
  const requests: Array<{ line: string; host?: string }> = [];

  beforeAll(async () => {
    origin = http.createServer((req, res) => {
      requests.push({ line: `${req.method} ${req.url}`, host: req.headers.host });
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => origin.close(() => resolve())));

  it('tunnels to the origin named in the URL and reads bodies whole, paused and resumed, over kept-alive tunnels', async () => {
    const proxy = await startConnectProxy({ to: () => (origin.address() as AddressInfo).port });
    const client = new HttpGetClient(new URL('http://bucket.s3.far-away.test:8080'), { maxSockets: 1, proxy: new URL(proxy.url) });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await client.get(`/key-${i}`, {});
        const received: Buffer[] = [];
        let pauses = 0;
        let memory = Buffer.alloc(0);
        const sink: BodySink = {
          space: (max) => (memory = Buffer.allocUnsafe(Math.min(max, 100_000))),
          filled: (n) => {
            received.push(Buffer.from(memory.subarray(0, n)));
            // Pause every few reads, as a slow disk would, and resume on the next turn.
            if (received.length % 7 !== 0) return true;
            pauses++;
            setImmediate(() => res.resume());
            return false;
          },
        };
        await res.read(sink);
        expect(Buffer.concat(received).equals(body)).toBe(true);
        expect(pauses).toBeGreaterThan(0);
      }
      expect(proxy.connects.map((c) => c.url)).toEqual(['bucket.s3.far-away.test:8080']);
      expect(requests.slice(-2)).toEqual([
        { line: 'GET /key-0', host: 'bucket.s3.far-away.test:8080' },
        { line: 'GET /key-1', host: 'bucket.s3.far-away.test:8080' },
      ]);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  it('sends credentials from the proxy URL as Basic auth, and names the answer a refused tunnel got', async () => {
    const proxy = await startConnectProxy({ to: () => 0, refuse: () => 'HTTP/1.1 407 Proxy Authentication Required\r\n\r\n' });
    try {
      const url = new URL(proxy.url);
      url.username = 'me';
      url.password = 'p%40ss';
      await expect(openTunnel(url, 'bucket.s3.far-away.test', 443, { timeoutMs: 5000 })).rejects.toThrow(
        `proxy ${proxy.url}: answered 407 Proxy Authentication Required (CONNECT bucket.s3.far-away.test:443)`,
      );
      expect(proxy.connects[0].headers['proxy-authorization']).toBe(`Basic ${Buffer.from('me:p@ss').toString('base64')}`);
      expect(proxy.connects[0].headers.host).toBe('bucket.s3.far-away.test:443');
    } finally {
      await proxy.close();
    }
  });
});

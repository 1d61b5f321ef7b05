import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BodySink, HttpGetClient } from './http-get';
import { isNetworkOrTimeoutError } from '../common/retryable';
import { loopbackCertificate } from '../../test/support/tls';

/** Takes at most `step` bytes per read and pauses after each, resuming on the next turn. */
class SlowSink implements BodySink {
  private readonly memory: Buffer;
  used = 0;
  pauses = 0;

  constructor(
    capacity: number,
    private readonly step: number,
    private readonly resume: () => void,
  ) {
    this.memory = Buffer.alloc(capacity);
  }

  space(max: number): Uint8Array {
    return this.memory.subarray(this.used, this.used + Math.min(max, this.step));
  }

  filled(n: number): boolean {
    this.used += n;
    this.pauses++;
    setImmediate(this.resume);
    return false;
  }

  bytes(): Buffer {
    return this.memory.subarray(0, this.used);
  }
}

interface Server {
  origin: URL;
  connections: number;
  close(): Promise<void>;
}

async function listen(server: net.Server, protocol = 'http'): Promise<Server> {
  const state = { connections: 0 };
  server.on(protocol === 'https' ? 'secureConnection' : 'connection', () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    origin: new URL(`${protocol}://127.0.0.1:${port}`),
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) (server as http.Server).closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function payload(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 8)) & 0xff;
  return bytes;
}

describe('HttpGetClient', () => {
  const big = payload(3 * 1024 * 1024 + 17);
  let server: Server;
  let client: HttpGetClient;

  beforeAll(async () => {
    server = await listen(
      http.createServer((req, res) => {
        if (req.url === '/big') {
          res.writeHead(200, { 'content-length': big.length, etag: '"e"', 'x-twice': 'a' }).end(big);
        } else if (req.url === '/chunked') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('hello ');
          setTimeout(() => res.end('chunked world'), 5);
        } else if (req.url === '/empty') {
          res.writeHead(200, { 'content-length': 0 }).end();
        } else if (req.url === '/stall') {
          res.writeHead(200, { 'content-length': 100 });
          res.write(Buffer.alloc(10));
        } else if (req.url === '/drop') {
          res.writeHead(200, { 'content-length': 1000 });
          res.write(Buffer.alloc(10), () => res.socket?.destroy());
        } else {
          res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>');
        }
      }),
    );
    client = new HttpGetClient(server.origin, { maxSockets: 4 });
  });

  afterAll(async () => {
    client.close();
    await server.close();
  });

  it('reads a body into the memory the sink gives, pausing and resuming as it asks, on one kept-alive connection', async () => {
    const before = server.connections;
    for (let round = 0; round < 2; round++) {
      const res = await client.get('/big', { 'x-test': 'yes' });
      expect(res.status).toBe(200);
      expect(res.length).toBe(big.length);
      expect(res.headers.etag).toBe('"e"');
      // The body bytes that came with the head wait in the connection's own memory; the rest of
      // the body, already sent, must not be read over them before the sink is given.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const sink = new SlowSink(big.length, 200_000, () => res.resume());
      await res.read(sink);
      expect(sink.bytes().equals(big)).toBe(true);
      expect(sink.pauses).toBeGreaterThan(10);
    }
    expect(server.connections - before).toBe(1);
  });

  it('copies no more than small reads through its own memory (the one with the head, and once a paused body resumes): the rest goes to the sink', async () => {
    // The sink is given only after the rest of the body has reached the kernel, so the read after
    // the resume was chosen before the sink was known.
    const res = await client.get('/big', {});
    await new Promise((resolve) => setTimeout(resolve, 20));
    const memory = Buffer.alloc(big.length);
    let used = 0;
    const copies: number[] = [];
    await res.read({
      space: (max) => {
        // Asked for less than the rest of the body: bytes the client read into its own memory.
        if (max < big.length - used) copies.push(max);
        return memory.subarray(used, used + max);
      },
      filled: (n) => {
        used += n;
        return true;
      },
    });
    expect(memory.equals(big)).toBe(true);
    // The first copy is what came with the head; the others are the small reads after a pause.
    expect(copies.length).toBeGreaterThanOrEqual(1);
    expect(copies[0]).toBeLessThanOrEqual(16 * 1024);
    expect(Math.max(...copies.slice(1), 0)).toBeLessThanOrEqual(4096);
  });

  it('decodes a chunked body and keeps the connection', async () => {
    const res = await client.get('/chunked', {});
    expect(res.length).toBeUndefined();
    expect(await res.text()).toBe('hello chunked world');
    const again = await client.get('/chunked', {});
    expect(await again.text()).toBe('hello chunked world');
  });

  it('answers an empty body at once, and an error with its text', async () => {
    const empty = await client.get('/empty', {});
    expect(empty.length).toBe(0);
    expect(await empty.text()).toBe('');
    const missing = await client.get('/missing', {});
    expect(missing.status).toBe(404);
    expect(await missing.text(10)).toBe('<Error><Co');
  });

  it('fails a body cut short with a transient error', async () => {
    const res = await client.get('/drop', {});
    const err = await res.text().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(isNetworkOrTimeoutError(err)).toBe(true);
  });

  it('stops at an abort, with the reason as cause, and recovers for the next request', async () => {
    const controller = new AbortController();
    const res = await client.get('/stall', {}, controller.signal);
    const reading = res.text();
    controller.abort(new DOMException('too slow', 'TimeoutError'));
    const err = await reading.then(
      () => undefined,
      (e: unknown) => e as Error & { cause?: Error },
    );
    expect(err?.name).toBe('AbortError');
    expect(err?.cause?.name).toBe('TimeoutError');
    expect(isNetworkOrTimeoutError(err)).toBe(true);
    await expect(client.get('/chunked', {}).then((r) => r.text())).resolves.toBe('hello chunked world');
  });

  it('opens no more connections than maxSockets; waiting requests take the freed ones', async () => {
    const one = new HttpGetClient(server.origin, { maxSockets: 1 });
    const before = server.connections;
    const bodies = await Promise.all([1, 2, 3].map(async () => (await one.get('/chunked', {})).text()));
    expect(bodies).toEqual(['hello chunked world', 'hello chunked world', 'hello chunked world']);
    expect(server.connections - before).toBe(1);
    one.close();
  });

  it('forgets a request that gave up waiting for a connection, so the freed one goes to the next', async () => {
    const one = new HttpGetClient(server.origin, { maxSockets: 1 });
    const before = server.connections;
    const holding = await one.get('/chunked', {});
    const controller = new AbortController();
    const gaveUp = one.get('/chunked', {}, controller.signal);
    controller.abort();
    await expect(gaveUp).rejects.toThrow();
    const next = one.get('/chunked', {});
    expect(await holding.text()).toBe('hello chunked world');
    expect(await (await next).text()).toBe('hello chunked world');
    // Handed the freed connection, not a new one opened after the idle one timed out.
    expect(server.connections - before).toBe(1);
    one.close();
  });

  it('refuses a header value with a line break before sending anything', async () => {
    await expect(client.get('/big', { 'x-bad': 'a\r\nx-injected: 1' })).rejects.toThrow(/line break/);
  });
});

describe('HttpGetClient against hand-written servers', () => {
  async function rawServer(onRequest: (socket: net.Socket, request: number) => void): Promise<Server> {
    return listen(
      net.createServer((socket) => {
        let request = 0;
        let seen = '';
        socket.on('data', (d: Buffer) => {
          seen += d.toString('latin1');
          while (seen.includes('\r\n\r\n')) {
            seen = seen.slice(seen.indexOf('\r\n\r\n') + 4);
            onRequest(socket, request++);
          }
        });
        socket.on('error', () => undefined);
      }),
    );
  }

  it('skips 1xx answers, and reads a body that ends with the connection', async () => {
    const server = await rawServer((socket) => {
      socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ');
      setTimeout(() => socket.end('the end'), 5);
    });
    const client = new HttpGetClient(server.origin, { maxSockets: 2 });
    const res = await client.get('/', {});
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('until the end');
    client.close();
    await server.close();
  });

  it('reads a head that takes several reads, and drops a connection whose head exceeds 64 KiB', async () => {
    const pad = (bytes: number): string => `x-pad: ${'p'.repeat(bytes)}\r\n`;
    const server = await rawServer((socket, request) => {
      const head = request === 0 ? pad(40 * 1024) : pad(70 * 1024);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 4\r\n${head}\r\nbody`);
    });
    const client = new HttpGetClient(server.origin, { maxSockets: 1 });
    const res = await client.get('/', {});
    expect(res.headers['x-pad']).toHaveLength(40 * 1024);
    expect(await res.text()).toBe('body');
    await expect(client.get('/', {})).rejects.toThrow('response head larger than 65536 bytes');
    client.close();
    await server.close();
  });

  it('sends a request again on a new connection when a kept-alive one was closed under it', async () => {
    const server = await rawServer((socket, request) => {
      // The second request on a connection meets a server that has just given up on it.
      if (request > 0) socket.destroy();
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const client = new HttpGetClient(server.origin, { maxSockets: 2 });
    expect(await (await client.get('/', {})).text()).toBe('ok');
    expect(await (await client.get('/', {})).text()).toBe('ok');
    expect(server.connections).toBe(2);
    client.close();
    await server.close();
  });

  it('drops a connection on which the server says more than it was asked', async () => {
    let answers = 0;
    const server = await rawServer((socket) =>
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${answers++ === 0 ? 'EXTRA' : ''}`),
    );
    const client = new HttpGetClient(server.origin, { maxSockets: 2 });
    await expect((await client.get('/', {})).text()).rejects.toThrow(/Content-Length|after/);
    expect(await (await client.get('/', {})).text()).toBe('ok');
    expect(server.connections).toBe(2);
    client.close();
    await server.close();
  });

  it('rejects an answer that is not HTTP/1.x', async () => {
    const server = await rawServer((socket) => socket.end('SSH-2.0-OpenSSH\r\n\r\n'));
    const client = new HttpGetClient(server.origin, { maxSockets: 2 });
    await expect(client.get('/', {})).rejects.toThrow(/not an HTTP\/1.x answer/);
    client.close();
    await server.close();
  });
});

describe('HttpGetClient over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'http-get-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads bodies through TLS, checking the certificate against the given CA', async () => {
    const { key, cert } = loopbackCertificate(dir);
    const body = payload(2 * 1024 * 1024);
    const server = await listen(
      https.createServer({ key, cert }, (_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body)),
      'https',
    );
    const trusting = new HttpGetClient(server.origin, { maxSockets: 2, tls: { ca: cert } });
    const res = await trusting.get('/', {});
    const sink = new SlowSink(body.length, 1 << 20, () => res.resume());
    await res.read(sink);
    expect(sink.bytes().equals(body)).toBe(true);
    trusting.close();
    const untrusting = new HttpGetClient(server.origin, { maxSockets: 2 });
    await expect(untrusting.get('/', {})).rejects.toThrow(/self.signed|certificate/i);
    untrusting.close();
    await server.close();
  });
});

import net from 'node:net';
import tls from 'node:tls';
import { openTunnel, tlsOverTunnel, TUNNEL_TIMEOUT_MS } from './proxy';

/**
 * Where a response body goes: memory the consumer owns, which the socket reads into directly.
 *
 * node:http hands every socket read over as a fresh 64 KiB Buffer that is then copied, hashed and
 * collected; for a 1 GiB object that is 16,000 allocations and about 4 s of CPU on 2 cores, four
 * times what rclone spends. Reading into the consumer's memory (net.Socket's `onread`) brings the
 * same download under 1 s of CPU (set C of `npm run bench`).
 */
export interface BodySink {
  /**
   * Memory for the next bytes of the body, at least 1 byte and ideally `max` (the rest of the body
   * when its length is known). May be asked several times; only `filled` consumes it.
   */
  space(max: number): Uint8Array;
  /** `n` bytes were placed at the start of the memory `space` last returned. false: stop reading until `resume()`. */
  filled(n: number): boolean;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; a repeated header's values joined with ", ". */
  headers: Readonly<Record<string, string>>;
  /** The body's length when the server declared it (Content-Length). */
  length?: number;
  /** Moves the whole body into `sink`; resolves once its last byte is there. Once per response. */
  read(sink: BodySink): Promise<void>;
  /** Lets a paused body (`filled` returned false) flow again. */
  resume(): void;
  /** The body as text, at most `limit` bytes of it kept (error answers). */
  text(limit?: number): Promise<string>;
  /** The body's bytes, at most `limit` of them kept. */
  bytes(limit?: number): Promise<Buffer>;
  /** Gives the body up: the connection is closed unless the body is already complete. */
  discard(): void;
}

export interface HttpGetClientOptions {
  /** Connections open at once at most; more requests wait for one to be free. */
  maxSockets: number;
  /** Idle connections are closed after this long (servers close theirs after 5 s to minutes). */
  idleTimeoutMs?: number;
  /** Extra TLS settings for https origins (a private CA, say); Node's defaults otherwise. */
  tls?: tls.ConnectionOptions;
  /** Connections go through this proxy's CONNECT tunnels (see proxy.ts). */
  proxy?: URL;
}

const SCRATCH_BYTES = 64 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
/**
 * A read while a head is awaited: a small object's whole answer still comes in one read, and no more
 * than this of a large body lands in scratch, to be copied into its sink (see nextBuffer).
 */
const HEAD_READ_BYTES = 16 * 1024;
/** The read that comes after a body's sink was not ready (see nextBuffer). */
const READ_BEFORE_SINK_BYTES = 4 * 1024;
/** What a body that ends with the connection (no length) is offered per read. */
const UNTIL_CLOSE_READ_BYTES = 1024 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Copies a received chunk into the memory `space` gives, a piece at a time, telling `filled` of
 * each piece, as a read with `onread` would; stops where `filled` says to pause and returns the
 * rest, for when reading resumes. For bytes that come as chunks ('data' events): a tunnelled
 * connection, or a body the AWS SDK received.
 */
export function copyChunk(chunk: Buffer, space: () => Uint8Array, filled: (n: number) => boolean): { paused: boolean; rest?: Buffer } {
  let offset = 0;
  while (offset < chunk.length) {
    const memory = space();
    const n = Math.min(memory.length, chunk.length - offset);
    memory.set(chunk.subarray(offset, offset + n));
    offset += n;
    if (!filled(n)) return { paused: true, rest: offset < chunk.length ? chunk.subarray(offset) : undefined };
  }
  return { paused: false };
}

/** An error that our retry rules treat as a dropped connection (see common/retryable.ts). */
function connectionError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason as unknown }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
  });
}

/**
 * A minimal HTTP/1.1 client for GET requests on keep-alive connections to one origin, whose
 * bodies are read into memory the caller provides. It speaks the part of HTTP/1.1 a GET needs:
 * status line and headers (1xx skipped), bodies framed by Content-Length, chunked or by the end of
 * the connection; anything it does not understand closes the connection with an error, which the
 * callers' retry policies treat like a dropped connection.
 */
export class HttpGetClient {
  private readonly idle: Connection[] = [];
  private readonly waiting: Array<() => void> = [];
  private open = 0;
  private closed = false;
  private readonly idleTimeoutMs: number;

  constructor(
    private readonly origin: URL,
    private readonly options: HttpGetClientOptions,
  ) {
    if (origin.protocol !== 'http:' && origin.protocol !== 'https:') throw new Error(`unsupported protocol ${origin.protocol}`);
    this.idleTimeoutMs = options.idleTimeoutMs ?? 4000;
  }

  /** Sends `GET path` with `headers`; resolves once the status line and headers have arrived. */
  async get(path: string, headers: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<HttpResponse> {
    const request = serializeRequest(this.origin.host, path, headers);
    signal?.throwIfAborted();
    const { connection, reused } = await this.acquire(signal, false);
    try {
      return await connection.exchange(request, signal);
    } catch (err) {
      // A kept-alive connection the server closed as we sent on it: retried once on a new one,
      // as browsers and undici do for requests without side effects.
      if (reused && !signal?.aborted && connection.failedBeforeResponse) {
        return (await this.acquire(signal, true)).connection.exchange(request, signal);
      }
      throw err;
    }
  }

  /** The proxy this client's connections go through, if any. */
  get proxy(): URL | undefined {
    return this.options.proxy;
  }

  close(): void {
    this.closed = true;
    for (const connection of this.idle.splice(0)) connection.destroy();
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** An idle connection (unless `fresh`), else a new one within maxSockets, else the next one freed. */
  private async acquire(signal: AbortSignal | undefined, fresh: boolean): Promise<{ connection: Connection; reused: boolean }> {
    for (;;) {
      const idle = fresh ? undefined : this.idle.pop();
      if (idle) return { connection: idle, reused: true };
      if (this.closed) throw connectionError('client closed');
      if (this.open < this.options.maxSockets) {
        this.open++;
        const pool = { release: (c: Connection) => this.release(c), closed: (c: Connection) => this.forget(c) };
        return { connection: new Connection(await this.transport(signal), pool, this.idleTimeoutMs), reused: false };
      }
      await this.nextFreed(signal);
      signal?.throwIfAborted();
    }
  }

  /** Where a new connection goes: straight to the origin, or into a tunnel opened through the proxy. */
  private async transport(signal: AbortSignal | undefined): Promise<Transport> {
    const { proxy, tls: tlsOptions } = this.options;
    if (!proxy) return { origin: this.origin, tls: tlsOptions };
    try {
      const { host, port } = originAddress(this.origin);
      const tunnel = await openTunnel(proxy, host, port, { tls: tlsOptions, signal, timeoutMs: TUNNEL_TIMEOUT_MS });
      return { origin: this.origin, tls: tlsOptions, tunnel };
    } catch (err) {
      this.open--;
      this.waiting.shift()?.();
      throw err;
    }
  }

  /** Resolves when a connection is released or closed, or at `signal`'s abort (then no longer waiting). */
  private nextFreed(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(wake);
        if (at >= 0) this.waiting.splice(at, 1);
        resolve();
      };
      this.waiting.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(connection: Connection): void {
    if (this.closed) {
      connection.destroy();
      return;
    }
    const wake = this.waiting.shift();
    this.idle.push(connection);
    wake?.();
  }

  private forget(connection: Connection): void {
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
    this.open--;
    this.waiting.shift()?.();
  }
}

function serializeRequest(host: string, path: string, headers: Readonly<Record<string, string>>): string {
  const unsafe = /[\r\n\0]/;
  if (unsafe.test(path) || path.includes(' ')) throw new Error('request path holds a space or a line break');
  let head = `GET ${path} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (unsafe.test(name) || unsafe.test(value)) throw new Error(`header ${JSON.stringify(name)} holds a line break`);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'close' };

interface Pool {
  release(connection: Connection): void;
  closed(connection: Connection): void;
}

/** The response being received on a connection, from the request to the last byte of the body. */
interface Exchange {
  phase: 'head' | 'body';
  /** Body bytes that came with the head, given to the sink before anything else. */
  early?: Buffer;
  framing?: Framing;
  keepAlive: boolean;
  sink?: BodySink;
  paused: boolean;
  signal?: AbortSignal;
  onAbort?: () => void;
  headResolve(response: HttpResponse): void;
  headReject(err: Error): void;
  bodyResolve?: () => void;
  bodyReject?: (err: Error) => void;
  /** Set once the last byte of the body arrived, or once the connection failed. */
  outcome?: { ok: true } | { ok: false; error: Error };
}

interface Transport {
  origin: URL;
  tls?: tls.ConnectionOptions;
  /** A stream to the origin through a proxy, paused (see openTunnel). */
  tunnel?: net.Socket;
}

function originAddress(origin: URL): { host: string; port: number } {
  return { host: origin.hostname.replace(/^\[|\]$/g, ''), port: Number(origin.port || (origin.protocol === 'https:' ? 443 : 80)) };
}

class Connection {
  private readonly socket: net.Socket;
  /**
   * Set for a tunnelled connection: TLS over an existing socket ignores `onread`, so its reads come
   * as 'data' chunks, copied into the same memory an `onread` read would have filled.
   */
  private readonly viaDataEvents: boolean;
  /** What is left of a 'data' chunk when the reader paused in the middle of it. */
  private backlog?: Buffer;
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  /** Bytes of an unfinished head gathered in `scratch`. */
  private headBytes = 0;
  /** Whether the memory last handed to the socket is the sink's (else: scratch, at headBytes). */
  private readingIntoSink = false;
  private current?: Exchange;
  private readonly chunked = new ChunkedDecoder();
  private dead = false;
  private gotResponseBytes = false;

  constructor(
    { origin, tls: tlsOptions, tunnel }: Transport,
    private readonly pool: Pool,
    idleTimeoutMs: number,
  ) {
    const { host, port } = originAddress(origin);
    const onread: net.OnReadOpts = { buffer: () => this.nextBuffer(), callback: (n: number) => this.onRead(n) };
    this.viaDataEvents = Boolean(tunnel);
    if (tunnel) {
      this.socket = origin.protocol === 'https:' ? tlsOverTunnel(tunnel, host, tlsOptions) : tunnel;
      this.socket.on('data', (chunk: Buffer) => void this.onData(chunk));
      this.socket.resume();
    } else if (origin.protocol === 'https:') {
      // tls.connect honours onread as net.connect does (Node documents it); its typings omit it.
      const options: tls.ConnectionOptions & { onread: net.OnReadOpts } = {
        ...tlsOptions,
        host,
        port,
        servername: net.isIP(host) ? undefined : host,
        ALPNProtocols: ['http/1.1'],
        onread,
      };
      this.socket = tls.connect(options);
    } else {
      this.socket = net.connect({ host, port, onread });
    }
    this.socket.setNoDelay(true);
    this.socket.setTimeout(idleTimeoutMs);
    this.socket.on('timeout', () => {
      if (!this.current) this.destroy();
    });
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.fail(connectionError('connection closed')));
  }

  /** True when the last exchange failed before a byte of its answer arrived. */
  get failedBeforeResponse(): boolean {
    return !this.gotResponseBytes;
  }

  exchange(request: string, signal?: AbortSignal): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      if (this.dead) {
        reject(connectionError('connection closed'));
        return;
      }
      this.gotResponseBytes = false;
      const exchange: Exchange = { phase: 'head', keepAlive: true, paused: false, signal, headResolve: resolve, headReject: reject };
      if (signal) {
        exchange.onAbort = () => this.fail(abortError(signal));
        signal.addEventListener('abort', exchange.onAbort, { once: true });
      }
      this.current = exchange;
      this.socket.write(request);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * The memory for the next read. Node asks for it as soon as a read is handled, so a body whose
   * sink is not ready yet (not given, or paused) has its memory chosen before the sink can give
   * any: the read after the resume lands in scratch and is copied. That read gets a small slice,
   * so that the ones after it go to the sink (a full-size read there would copy 64 KiB of every
   * 1 MiB object of set B, into shared memory, where copies are slower). The read that brings a head brings the
   * body's first bytes too; it is kept small for the same reason (HEAD_READ_BYTES).
   */
  private nextBuffer(): Uint8Array {
    const exchange = this.current;
    const framing = exchange?.framing;
    this.readingIntoSink = false;
    if (exchange?.phase !== 'body') return this.scratch.subarray(this.headBytes, this.headBytes + HEAD_READ_BYTES);
    if (!framing || framing.kind === 'chunked') return this.scratch;
    const max = framing.kind === 'length' ? framing.remaining : UNTIL_CLOSE_READ_BYTES;
    if (exchange.sink && !exchange.paused && !exchange.early) {
      if (max === 0) return this.scratch;
      const memory = exchange.sink.space(max);
      this.readingIntoSink = true;
      return memory.length > max ? memory.subarray(0, max) : memory;
    }
    const bodyToCome = max > (exchange.early?.length ?? 0);
    return bodyToCome ? this.scratch.subarray(0, READ_BEFORE_SINK_BYTES) : this.scratch;
  }

  /** A tunnelled connection's read: what `onread` would have done, pausing where it would have. false: paused. */
  private onData(chunk: Buffer): boolean {
    if (this.dead) return false;
    const { paused, rest } = copyChunk(
      chunk,
      () => this.nextBuffer(),
      (n) => !this.dead && this.onRead(n),
    );
    if (!paused) return true;
    this.socket.pause();
    this.backlog = rest;
    return false;
  }

  /** Lets the socket flow again, after what a tunnelled read left over. */
  private resumeReading(): void {
    const backlog = this.backlog;
    this.backlog = undefined;
    if (backlog && !this.onData(backlog)) return;
    if (!this.dead) this.socket.resume();
  }

  /** false pauses the socket (the sink asked for it, or a head waits for its body to be wanted). */
  private onRead(n: number): boolean {
    const exchange = this.current;
    if (!exchange) {
      // Nothing is owed on an idle connection: a server that talks now is not to be trusted with the next request.
      this.destroy();
      return false;
    }
    this.gotResponseBytes = true;
    try {
      if (this.readingIntoSink) return this.intoSink(exchange, n);
      if (exchange.phase === 'head') return this.onHeadBytes(exchange, n);
      return this.deliver(exchange, this.scratch.subarray(0, n));
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
  }

  private intoSink(exchange: Exchange, n: number): boolean {
    const framing = exchange.framing!;
    if (framing.kind === 'length') framing.remaining -= n;
    const more = exchange.sink!.filled(n);
    if (framing.kind === 'length' && framing.remaining === 0) {
      this.finish(exchange);
      return true;
    }
    if (!more) exchange.paused = true;
    return more;
  }

  private onHeadBytes(exchange: Exchange, n: number): boolean {
    this.headBytes += n;
    for (;;) {
      const end = this.scratch.subarray(0, this.headBytes).indexOf(HEADER_END);
      if (end < 0) {
        if (this.headBytes >= MAX_HEAD_BYTES) throw connectionError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
        return true;
      }
      const head = parseHead(this.scratch.toString('latin1', 0, end));
      const rest = this.scratch.subarray(end + 4, this.headBytes);
      if (head.status >= 100 && head.status < 200) {
        // 1xx: informational, the real answer follows.
        rest.copy(this.scratch);
        this.headBytes = rest.length;
        continue;
      }
      this.headBytes = 0;
      exchange.phase = 'body';
      exchange.keepAlive = head.keepAlive;
      exchange.framing = head.framing;
      // A view, not a copy (a fresh buffer per response cost page faults): the socket stays
      // paused until read() has handed these bytes to the sink, so nothing is read over them.
      if (rest.length > 0) exchange.early = rest;
      const response = this.response(exchange, head);
      exchange.headResolve(response);
      if (head.framing.kind === 'length' && head.framing.remaining === 0) {
        if (exchange.early) throw connectionError('bytes after an empty body');
        this.finish(exchange);
        return true;
      }
      // The body waits in the kernel until someone wants it.
      exchange.paused = true;
      return false;
    }
  }

  /** Copies body bytes that arrived in scratch into the sink, decoding chunked framing. */
  private deliver(exchange: Exchange, bytes: Buffer): boolean {
    const framing = exchange.framing!;
    const sink = exchange.sink!;
    let more = true;
    const put = (data: Buffer): void => {
      let offset = 0;
      while (offset < data.length) {
        const memory = sink.space(data.length - offset);
        const n = Math.min(memory.length, data.length - offset);
        memory.set(data.subarray(offset, offset + n));
        offset += n;
        if (!sink.filled(n)) more = false;
      }
    };
    if (framing.kind === 'chunked') {
      const { done, extra } = this.chunked.decode(bytes, put);
      if (done) {
        if (extra > 0) throw connectionError('bytes after the end of a chunked body');
        this.finish(exchange);
        return true;
      }
    } else if (framing.kind === 'length') {
      if (bytes.length > framing.remaining) throw connectionError('more bytes than Content-Length');
      framing.remaining -= bytes.length;
      put(bytes);
      if (framing.remaining === 0) {
        this.finish(exchange);
        return true;
      }
    } else {
      put(bytes);
    }
    if (!more) exchange.paused = true;
    return more;
  }

  private response(exchange: Exchange, head: ParsedHead): HttpResponse {
    let reading = false;
    const read = (sink: BodySink): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        if (reading) throw new Error('the body is already being read');
        reading = true;
        if (exchange.outcome) {
          // Complete already (an empty body), or the connection failed first.
          if (exchange.outcome.ok) resolve();
          else reject(exchange.outcome.error);
          return;
        }
        exchange.sink = sink;
        exchange.bodyResolve = resolve;
        exchange.bodyReject = reject;
        const early = exchange.early;
        exchange.early = undefined;
        exchange.paused = false;
        if (early && !this.deliverSafely(exchange, early)) return;
        if (exchange === this.current && !exchange.paused) this.resumeReading();
      });
    return {
      status: head.status,
      headers: head.headers,
      length: head.framing.kind === 'length' ? head.framing.remaining : undefined,
      read,
      resume: () => {
        if (exchange === this.current && exchange.paused && exchange.sink) {
          exchange.paused = false;
          this.resumeReading();
        }
      },
      text: async (limit = Infinity) => {
        const sink = new KeepingSink(limit);
        await read(sink);
        return sink.bytes().toString('utf8');
      },
      bytes: async (limit = Infinity) => {
        const sink = new KeepingSink(limit);
        await read(sink);
        return sink.bytes();
      },
      discard: () => {
        if (exchange === this.current) this.fail(connectionError('body discarded'));
      },
    };
  }

  private deliverSafely(exchange: Exchange, bytes: Buffer): boolean {
    try {
      return this.deliver(exchange, bytes);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
  }

  private finish(exchange: Exchange): void {
    this.detach(exchange);
    exchange.outcome = { ok: true };
    if (exchange.keepAlive && !this.dead) {
      this.chunked.reset();
      // A body that came whole with its head left the socket paused: idle, it must notice a close.
      this.resumeReading();
      this.pool.release(this);
    } else {
      this.destroy();
    }
    exchange.bodyResolve?.();
  }

  private detach(exchange: Exchange): void {
    if (exchange.onAbort) exchange.signal?.removeEventListener('abort', exchange.onAbort);
    this.current = undefined;
    this.readingIntoSink = false;
    this.headBytes = 0;
  }

  private onEnd(): void {
    const exchange = this.current;
    if (exchange?.phase === 'body' && exchange.framing?.kind === 'close' && exchange.sink) {
      exchange.keepAlive = false;
      this.finish(exchange);
      return;
    }
    this.fail(connectionError('connection closed by the server'));
  }

  private fail(err: Error): void {
    const exchange = this.current;
    if (!this.dead) {
      this.dead = true;
      this.socket.destroy();
      this.pool.closed(this);
    }
    if (!exchange) return;
    this.detach(exchange);
    exchange.outcome = { ok: false, error: err };
    if (exchange.phase === 'head') exchange.headReject(err);
    else exchange.bodyReject?.(err);
  }
}

interface ParsedHead {
  status: number;
  headers: Record<string, string>;
  framing: Framing;
  keepAlive: boolean;
}

function parseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]);
  if (!statusLine) throw connectionError(`not an HTTP/1.x answer: ${JSON.stringify(lines[0].slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || line[0] === ' ' || line[0] === '\t')
      throw connectionError(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  const status = Number(statusLine[2]);
  const connection = (headers.connection ?? '').toLowerCase();
  let keepAlive = statusLine[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  let framing: Framing;
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
    framing = { kind: 'length', remaining: 0 };
  } else if (headers['transfer-encoding'] !== undefined) {
    if (!/(^|,)\s*chunked\s*$/i.test(headers['transfer-encoding']))
      throw connectionError(`unsupported transfer-encoding ${headers['transfer-encoding']}`);
    framing = { kind: 'chunked' };
  } else if (headers['content-length'] !== undefined) {
    if (!/^\d+$/.test(headers['content-length'])) throw connectionError(`bad content-length ${headers['content-length']}`);
    framing = { kind: 'length', remaining: Number(headers['content-length']) };
  } else {
    framing = { kind: 'close' };
    keepAlive = false;
  }
  return { status, headers, framing, keepAlive };
}

/** Decodes a chunked body as it arrives (RFC 9112 §7.1); extensions and trailers are skipped. */
class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';
  private remaining = 0;

  reset(): void {
    this.state = 'size';
    this.line = '';
    this.remaining = 0;
  }

  /** Calls `data` with each piece of payload; returns whether the body ended and how many bytes followed it. */
  decode(bytes: Buffer, data: (piece: Buffer) => void): { done: boolean; extra: number } {
    let i = 0;
    while (i < bytes.length) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, bytes.length - i);
        data(bytes.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      const lf = bytes.indexOf(0x0a, i);
      const end = lf < 0 ? bytes.length : lf;
      this.line += bytes.toString('latin1', i, end);
      if (this.line.length > 4096) throw connectionError('chunk header line too long');
      i = end;
      if (lf < 0) break;
      i++;
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.state === 'data-end') {
        if (line !== '') throw connectionError('chunk not followed by CRLF');
        this.state = 'size';
      } else if (this.state === 'size') {
        const size = /^([0-9a-fA-F]{1,13})\s*(;.*)?$/.exec(line);
        if (!size) throw connectionError(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`);
        this.remaining = parseInt(size[1], 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        return { done: true, extra: bytes.length - i };
      }
    }
    return { done: false, extra: 0 };
  }
}

/** Collects a body as text, keeping at most `limit` bytes. */
class KeepingSink implements BodySink {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private buffer = Buffer.allocUnsafe(SCRATCH_BYTES);
  private used = 0;

  constructor(private readonly limit: number) {}

  space(): Uint8Array {
    return this.buffer.subarray(this.used);
  }

  filled(n: number): boolean {
    this.used += n;
    if (this.used === this.buffer.length) this.flush();
    return true;
  }

  bytes(): Buffer {
    this.flush();
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
  }

  private flush(): void {
    if (this.used > 0 && this.kept < this.limit) {
      const keep = this.buffer.subarray(0, Math.min(this.used, this.limit - this.kept));
      this.chunks.push(keep);
      this.kept += keep.length;
      this.buffer = Buffer.allocUnsafe(SCRATCH_BYTES);
    }
    this.used = 0;
  }
}

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY with the meaning Go's net/http gives them, which is rclone's
 * and the AWS CLI's in all that matters here (proxy-from-env, the npm choice, matches
 * `NO_PROXY=example.com` only exactly and knows no CIDR ranges, which VPC set-ups use).
 */
export interface ProxySettings {
  httpsProxy?: string;
  httpProxy?: string;
  /** Entries: `*`, a host name (itself and its subdomains; a leading `.` or `*.` is the same), an IP, a CIDR range, each optionally `:port`. */
  noProxy: readonly string[];
}

/** The proxy for requests to `target`, or undefined for a direct connection. */
export function proxyFor(target: URL, settings: ProxySettings): URL | undefined {
  const proxy = target.protocol === 'https:' ? settings.httpsProxy : settings.httpProxy;
  if (!proxy) return undefined;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  // A proxy cannot reach this machine's loopback; Go never proxies it either.
  if (host === 'localhost' || host.endsWith('.localhost') || isLoopback(host)) return undefined;
  if (settings.noProxy.some((entry) => bypasses(entry, host, port))) return undefined;
  return proxyUrl(proxy);
}

/** A proxy setting as a URL: host:port means http://, as curl takes it. */
export function proxyUrl(setting: string): URL {
  return new URL(setting.includes('://') ? setting : `http://${setting}`);
}

function isLoopback(host: string): boolean {
  if (net.isIPv4(host)) return host.startsWith('127.');
  return net.isIPv6(host) && (inCidr('::1/128', host) || inCidr('::ffff:127.0.0.0/104', host));
}

function bypasses(rawEntry: string, host: string, port: number): boolean {
  let entry = rawEntry.trim().toLowerCase();
  if (entry === '') return false;
  if (entry === '*') return true;
  if (entry.includes('/')) return inCidr(entry, host);
  const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
  if (withPort) {
    if (Number(withPort[2]) !== port) return false;
    entry = withPort[1];
  }
  entry = entry.replace(/^\[|\]$/g, '');
  if (net.isIP(entry)) return net.isIP(host) !== 0 && sameAddress(entry, host);
  const domain = entry.replace(/^\*?\./, '');
  return host === domain || host.endsWith(`.${domain}`);
}

function sameAddress(a: string, b: string): boolean {
  const list = new net.BlockList();
  list.addAddress(a, net.isIPv6(a) ? 'ipv6' : 'ipv4');
  return list.check(b, net.isIPv6(b) ? 'ipv6' : 'ipv4');
}

function inCidr(entry: string, host: string): boolean {
  const [address, bits] = entry.split('/');
  const family = net.isIPv6(address) ? 'ipv6' : net.isIPv4(address) ? 'ipv4' : undefined;
  if (!family || !net.isIP(host)) return false;
  const list = new net.BlockList();
  try {
    list.addSubnet(address, Number(bits), family);
    return list.check(host, net.isIPv6(host) ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

/** The proxy without its credentials, for logs and error messages. */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

const MAX_CONNECT_HEAD_BYTES = 16 * 1024;

export interface TunnelOptions {
  /** TLS settings for an https:// proxy (a private CA, say). */
  tls?: tls.ConnectionOptions;
  signal?: AbortSignal;
  /** The tunnel must be open within this long. */
  timeoutMs: number;
}

/**
 * A TCP stream to `host:port` through the proxy's CONNECT, for every target, http or https: the
 * proxy sees the host and port and never a signed request. Resolves with the stream paused, right
 * after the proxy's 2xx head. Failures carry ECONNRESET, which the retry layers retry.
 */
export function openTunnel(proxy: URL, host: string, port: number, options: TunnelOptions): Promise<net.Socket> {
  const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
  const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
  const proxyPort = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80));
  return new Promise<net.Socket>((resolve, reject) => {
    const socket =
      proxy.protocol === 'https:'
        ? tls.connect({ ...options.tls, host: proxyHost, port: proxyPort, servername: net.isIP(proxyHost) ? undefined : proxyHost })
        : net.connect({ host: proxyHost, port: proxyPort });
    let head = Buffer.alloc(0);
    const done = (err?: Error): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.setTimeout(0);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) {
        socket.destroy();
        reject(Object.assign(err, { code: (err as NodeJS.ErrnoException).code ?? 'ECONNRESET' }));
      } else {
        socket.pause();
        resolve(socket);
      }
    };
    const failure = (why: string): Error => new Error(`proxy ${describeProxy(proxy)}: ${why} (CONNECT ${authority})`);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_CONNECT_HEAD_BYTES) done(failure('answer head too large'));
        return;
      }
      const statusLine = head.toString('latin1', 0, head.indexOf('\r\n'));
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      if (!status) done(failure(`not an HTTP answer: ${JSON.stringify(statusLine.slice(0, 80))}`));
      else if (!status[1].startsWith('2')) done(failure(`answered ${statusLine.slice(9)}`));
      // The target speaks only once spoken to: bytes already here are not its.
      else if (head.length > end + 4) done(failure('bytes after the CONNECT answer'));
      else done();
    };
    const onError = (err: Error): void => done(failure(err.message));
    const onClose = (): void => done(failure('connection closed before the tunnel opened'));
    const onAbort = (): void => done(Object.assign(failure('aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.setTimeout(options.timeoutMs, () => done(failure(`no answer within ${options.timeoutMs} ms`)));
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const credentials =
      proxy.username || proxy.password
        ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}\r\n`
        : '';
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${credentials}\r\n`);
  });
}

/** A proxy that does not open a tunnel within this long is treated as a dropped connection. */
export const TUNNEL_TIMEOUT_MS = 10_000;

/** TLS to `host` over an open tunnel, as a direct connection would have it (SNI, HTTP/1.1). */
export function tlsOverTunnel(tunnel: net.Socket, host: string, options?: tls.ConnectionOptions, servername?: string): tls.TLSSocket {
  return tls.connect({
    ...options,
    socket: tunnel,
    servername: servername ?? (net.isIP(host) ? undefined : host),
    ALPNProtocols: ['http/1.1'],
  });
}

/** node:http's callback for createConnection takes no stream with an error; its typings insist on one. */
type Oncreate = (err: Error | null, stream?: Duplex) => void;

/**
 * node:http agents for the AWS SDK's request handler that decide per connection, as the signed GETs
 * do: through the proxy's tunnel, or straight to the host NO_PROXY names.
 */
export function proxyAgents(
  settings: ProxySettings,
  options: { tls?: tls.ConnectionOptions },
): { httpAgent: http.Agent; httpsAgent: https.Agent } {
  /** The tunnelled stream for `request`, handed to node:http's callback; undefined when NO_PROXY says direct. */
  const tunnelled = (request: https.RequestOptions, secure: boolean, callback: Oncreate | undefined): boolean => {
    const host = hostOf(request);
    const port = Number(request.port ?? (secure ? 443 : 80));
    const proxy = proxyFor(new URL(`${secure ? 'https:' : 'http:'}//${net.isIPv6(host) ? `[${host}]` : host}:${port}`), settings);
    if (!proxy) return false;
    openTunnel(proxy, host, port, { tls: options.tls, timeoutMs: TUNNEL_TIMEOUT_MS }).then(
      (tunnel) => {
        if (secure) return callback?.(null, tlsOverTunnel(tunnel, host, options.tls, request.servername));
        tunnel.resume();
        callback?.(null, tunnel);
      },
      (err: Error) => callback?.(err),
    );
    return true;
  };
  class HttpProxyAgent extends http.Agent {
    override createConnection(request: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | undefined {
      if (tunnelled(request, false, callback as Oncreate | undefined)) return undefined;
      return super.createConnection(request, callback) ?? undefined;
    }
  }
  class HttpsProxyAgent extends https.Agent {
    override createConnection(request: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | undefined {
      if (tunnelled(request, true, callback as Oncreate | undefined)) return undefined;
      return super.createConnection(request, callback) ?? undefined;
    }
  }
  return {
    httpAgent: new HttpProxyAgent({ keepAlive: true }),
    httpsAgent: new HttpsProxyAgent({ keepAlive: true, ...options.tls }),
  };
}

function hostOf(request: http.ClientRequestArgs): string {
  return (request.hostname ?? request.host ?? 'localhost').replace(/^\[|\]$/g, '');
}

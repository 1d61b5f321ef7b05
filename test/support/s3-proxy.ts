import { createHash } from 'node:crypto';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

export type ListingOrder = 'reverse' | 'shuffle';

/**
 * A real HTTP proxy between the app and the S3 emulator, for fault injection and observation:
 * it counts requests, flips bytes in chosen objects' bodies, fails chosen requests, and can
 * re-serve listings in a hostile order (complete, but not in UTF-8 byte order, in small pages).
 */
export class S3Proxy {
  readonly requests: Array<{ method: string; kind: 'list' | 'object' | 'bucket'; key?: string; range?: string; userAgent?: string }> = [];
  /** key -> how many more GET bodies to corrupt. */
  readonly corrupt = new Map<string, number>();
  /** key -> how many more GETs to answer with 500. */
  readonly fail = new Map<string, number>();
  /** `key bytes=a-b` -> how many more GETs of that range to answer with 500. */
  readonly failRanges = new Map<string, number>();
  listing?: { order: ListingOrder; pageSize: number };
  /** key -> headers added to its GET and HEAD answers (checksums, SSE), as real S3 would send them. */
  readonly extraHeaders = new Map<string, Record<string, string>>();
  /** key -> the part size it was uploaded with: HEAD ?partNumber=N is answered as S3 does. */
  readonly partSizes = new Map<string, number>();
  /** key -> how many more GETs to hold for `stallMs` before answering. */
  readonly stall = new Map<string, number>();
  stallMs = 0;
  /** The next this many listings are cut after a few entries and sent close-delimited, as a dropped transfer arrives. */
  cutListings = 0;
  /** The next this many listings never answer (a stalled connection). */
  stallListings = 0;
  /** As S3 does: a request signed more than this far from the proxy's clock gets 403 RequestTimeTooSkewed (with Date). */
  maxSkewMs = Infinity;
  /** Requests refused for their skew. */
  skewed = 0;
  /** When set, a request signed with an access key it refuses gets 403 ExpiredToken, as S3 answers expired credentials. */
  acceptsAccessKey?: (accessKeyId: string, sessionToken: string | undefined) => boolean;
  /**
   * key -> its storage class as S3 would list it, and its restore state. A GET of an object in an
   * archive class that is not restored is answered 403 InvalidObjectState, as S3 does (Intelligent-
   * Tiering's archive tiers are listed as INTELLIGENT_TIERING and refused the same way: `tierArchived`).
   */
  readonly archive = new Map<string, { storageClass: string; restore?: 'restoring' | 'restored'; tierArchived?: boolean }>();
  /** key -> how many more GETs to answer chunked, without Content-Length (valid HTTP, as some gateways answer). */
  readonly chunked = new Map<string, number>();
  /** key -> how many more GETs to answer chunked with bytes past the object's end. */
  readonly overlong = new Map<string, number>();
  /**
   * When set, the bucket lives in this region: a request signed for another one is refused as S3
   * refuses it (`400 AuthorizationHeaderMalformed` naming the region, or `301 PermanentRedirect`),
   * both with `x-amz-bucket-region`.
   */
  bucketRegion?: { region: string; answer: 'authorization-header' | 'permanent-redirect' };
  /** Requests refused for being signed for the wrong region. */
  wrongRegion: Array<{ method: string; kind: string; region: string }> = [];
  /** Listing requests that asked for RestoreStatus (x-amz-optional-object-attributes). */
  restoreStatusAsked = 0;
  /** Access key ids the requests were signed with, in arrival order. */
  readonly accessKeys: string[] = [];
  private server?: http.Server;
  private readonly upstream: URL;

  constructor(upstreamEndpoint: string) {
    this.upstream = new URL(upstreamEndpoint);
  }

  async start(): Promise<string> {
    this.server = http.createServer(
      (req, res) =>
        void this.handle(req, res).catch((err: unknown) => {
          res.statusCode = 502;
          res.end(String(err));
        }),
    );
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  objectGets(key?: string): number {
    return this.requests.filter((r) => r.method === 'GET' && r.kind === 'object' && (key === undefined || r.key === key)).length;
  }

  reset(): void {
    this.requests.length = 0;
    this.corrupt.clear();
    this.fail.clear();
    this.failRanges.clear();
    this.extraHeaders.clear();
    this.partSizes.clear();
    this.stall.clear();
    this.listing = undefined;
    this.cutListings = 0;
    this.stallListings = 0;
    this.maxSkewMs = Infinity;
    this.skewed = 0;
    this.acceptsAccessKey = undefined;
    this.accessKeys.length = 0;
    this.archive.clear();
    this.restoreStatusAsked = 0;
    this.chunked.clear();
    this.overlong.clear();
    this.bucketRegion = undefined;
    this.wrongRegion = [];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [, bucket, ...rest] = url.pathname.split('/');
    const key = rest.length > 0 ? decodeURIComponent(rest.join('/')) : undefined;
    const kind = key ? 'object' : url.searchParams.has('list-type') ? 'list' : 'bucket';
    this.requests.push({ method: req.method ?? 'GET', kind, key, range: req.headers.range, userAgent: req.headers['user-agent'] });

    const accessKeyId = /Credential=([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
    if (accessKeyId) this.accessKeys.push(accessKeyId);
    if (
      this.acceptsAccessKey &&
      accessKeyId &&
      !this.acceptsAccessKey(accessKeyId, req.headers['x-amz-security-token'] as string | undefined)
    ) {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>');
      return;
    }
    const signedRegion = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
    if (this.bucketRegion && signedRegion && signedRegion !== this.bucketRegion.region) {
      const { region, answer } = this.bucketRegion;
      this.wrongRegion.push({ method: req.method ?? 'GET', kind, region: signedRegion });
      const headers = { 'content-type': 'application/xml', 'x-amz-bucket-region': region };
      if (answer === 'permanent-redirect') {
        res.writeHead(301, headers);
        res.end(
          `<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Endpoint>s3.${region}.amazonaws.com</Endpoint><Bucket>${bucket}</Bucket></Error>`,
        );
      } else {
        res.writeHead(400, headers);
        res.end(
          `<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region '${signedRegion}' is wrong; expecting '${region}'</Message><Region>${region}</Region></Error>`,
        );
      }
      return;
    }
    const amzDate = req.headers['x-amz-date'];
    if (typeof amzDate === 'string' && Number.isFinite(this.maxSkewMs)) {
      const signedAt = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
      if (Math.abs(signedAt - Date.now()) > this.maxSkewMs) {
        this.skewed++;
        res.writeHead(403, { 'content-type': 'application/xml', date: new Date().toUTCString() });
        res.end(
          '<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>',
        );
        return;
      }
    }
    if (kind === 'list' && req.headers['x-amz-optional-object-attributes'] === 'RestoreStatus') this.restoreStatusAsked++;
    if (kind === 'list' && this.archive.size > 0) return this.serveArchiveListing(req, url, res);
    if (req.method === 'GET' && key && this.archive.has(key)) {
      const { storageClass, restore, tierArchived } = this.archive.get(key)!;
      if ((storageClass === 'GLACIER' || storageClass === 'DEEP_ARCHIVE' || tierArchived) && restore !== 'restored') {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end(
          "<Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object's storage class</Message></Error>",
        );
        return;
      }
    }
    if (kind === 'list' && this.listing) return this.serveHostileListing(bucket, url, res);
    if (kind === 'list' && this.stallListings > 0) {
      this.stallListings--;
      return; // the head never comes; the socket stays open until the client gives up
    }
    if (kind === 'list' && this.cutListings > 0) {
      this.cutListings--;
      const xml = await this.fetchText(`${url.pathname}${url.search}`);
      const cut = xml.slice(0, xml.indexOf('</Contents>', xml.indexOf('</Contents>') + 1) + '</Contents>'.length);
      // No Content-Length: the end of the connection is the end of the body, wherever it falls.
      res.writeHead(200, { 'content-type': 'application/xml', connection: 'close' });
      res.end(cut);
      return;
    }
    if (req.method === 'GET' && key && this.take(this.stall, key)) await new Promise((r) => setTimeout(r, this.stallMs).unref());
    const partNumber = url.searchParams.get('partNumber');
    if (req.method === 'HEAD' && key && partNumber && this.partSizes.has(key)) return this.servePartHead(req, res, key, Number(partNumber));
    const failRange = req.method === 'GET' && key && req.headers.range && this.take(this.failRanges, `${key} ${req.headers.range}`);
    if (failRange || (req.method === 'GET' && key && this.take(this.fail, key))) {
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<Error><Code>InternalError</Code><Message>injected failure</Message></Error>');
      return;
    }
    const overlong = req.method === 'GET' && key !== undefined && this.take(this.overlong, key);
    if (overlong || (req.method === 'GET' && key !== undefined && this.take(this.chunked, key))) {
      const upstream = await this.forward(req);
      const headers = { ...upstream.headers, 'transfer-encoding': 'chunked' };
      delete headers['content-length'];
      res.writeHead(upstream.statusCode ?? 502, headers);
      upstream.on('data', (chunk: Buffer) => res.write(chunk));
      upstream.on('end', () => res.end(overlong ? 'bytes past the end of the object' : undefined));
      return;
    }
    const corrupt = req.method === 'GET' && key !== undefined && this.take(this.corrupt, key);
    const upstream = await this.forward(req);
    res.writeHead(upstream.statusCode ?? 502, { ...upstream.headers, ...(key ? this.extraHeaders.get(key) : undefined) });
    if (!corrupt) {
      upstream.pipe(res);
      return;
    }
    let first = true;
    upstream.on('data', (chunk: Buffer) => {
      if (first && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[0] ^= 0xff;
        first = false;
      }
      res.write(chunk);
    });
    upstream.on('end', () => res.end());
  }

  /** The upstream listing with each archived key's StorageClass (and RestoreStatus, when asked for) as S3 lists them. */
  private async serveArchiveListing(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
    const withRestoreStatus = req.headers['x-amz-optional-object-attributes'] === 'RestoreStatus';
    const xml = (await this.fetchText(`${url.pathname}${url.search}`)).replace(
      /<Contents>([\s\S]*?)<\/Contents>/g,
      (whole, body: string) => {
        const key = /<Key>([^<]*)<\/Key>/.exec(body)?.[1];
        const archived = key === undefined ? undefined : this.archive.get(key);
        if (!archived) return whole;
        const restoreStatus =
          withRestoreStatus && archived.restore
            ? `<RestoreStatus><IsRestoreInProgress>${archived.restore === 'restoring'}</IsRestoreInProgress></RestoreStatus>`
            : '';
        return `<Contents>${body.replace(/<StorageClass>[^<]*<\/StorageClass>/, '')}<StorageClass>${archived.storageClass}</StorageClass>${restoreStatus}</Contents>`;
      },
    );
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(xml)) });
    res.end(xml);
  }

  /** What S3 answers to HEAD ?partNumber=N: that part's length and the number of parts. */
  private async servePartHead(req: IncomingMessage, res: ServerResponse, key: string, partNumber: number): Promise<void> {
    const whole = await this.forward(req, req.url?.split('?')[0]);
    whole.resume();
    const size = Number(whole.headers['content-length']);
    const partSize = this.partSizes.get(key)!;
    const parts = Math.ceil(size / partSize);
    const length = Math.min(partSize, size - (partNumber - 1) * partSize);
    res.writeHead(206, {
      ...whole.headers,
      'content-length': String(length),
      'content-range': `bytes ${(partNumber - 1) * partSize}-${(partNumber - 1) * partSize + length - 1}/${size}`,
      'x-amz-mp-parts-count': String(parts),
    });
    res.end();
  }

  private take(map: Map<string, number>, key: string): boolean {
    const left = map.get(key) ?? 0;
    if (left <= 0) return false;
    map.set(key, left - 1);
    return true;
  }

  private forward(req: IncomingMessage, path = req.url): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const out = http.request(
        { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path, headers: req.headers },
        resolve,
      );
      out.on('error', reject);
      req.pipe(out);
    });
  }

  private async fetchText(path: string): Promise<string> {
    const res = await fetch(new URL(path, this.upstream));
    return res.text();
  }

  /** The full listing from upstream, re-paged by this proxy in a hostile order. */
  private async serveHostileListing(bucket: string, url: URL, res: ServerResponse): Promise<void> {
    const prefix = url.searchParams.get('prefix') ?? '';
    const blocks: string[] = [];
    let token: string | undefined;
    do {
      const q = new URLSearchParams({ 'list-type': '2', prefix, 'max-keys': '1000' });
      if (token) q.set('continuation-token', token);
      const xml = await this.fetchText(`/${bucket}?${q}`);
      blocks.push(...(xml.match(/<Contents>[\s\S]*?<\/Contents>/g) ?? []));
      token = /<NextContinuationToken>([^<]+)<\/NextContinuationToken>/.exec(xml)?.[1];
    } while (token);
    const { order, pageSize } = this.listing!;
    const ordered = order === 'reverse' ? blocks.reverse() : shuffle(blocks);
    const offset = Number(url.searchParams.get('continuation-token') ?? 0);
    const page = ordered.slice(offset, offset + pageSize);
    const truncated = offset + pageSize < ordered.length;
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Name>${bucket}</Name><Prefix>${prefix}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${pageSize}</MaxKeys>` +
        `<IsTruncated>${truncated}</IsTruncated>` +
        (truncated ? `<NextContinuationToken>${offset + pageSize}</NextContinuationToken>` : '') +
        page.join('') +
        `</ListBucketResult>`,
    );
  }
}

/** A scrambled order that is the same on every request, so that pages of one listing fit together. */
function shuffle(blocks: string[]): string[] {
  const rank = (b: string): string =>
    createHash('md5')
      .update(b.replace(/<LastModified>.*?<\/LastModified>/, ''))
      .digest('hex');
  return [...blocks].sort((a, b) => (rank(a) < rank(b) ? -1 : 1));
}

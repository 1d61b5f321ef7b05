import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  NotFound,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppError, errorMessage } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { type BodySink, copyChunk, HttpGetClient, HttpResponse } from './http-get';
import { type DataPath, isDirectoryBucket } from './data-path';
import { ListedObject, ListPage, ListParseError, parseListObjectsV2, stripQuotes } from './list-parser';
import { canonicalQueryString, GetRequestSigner, rfc3986, UNSIGNED_PAYLOAD } from './sigv4';
import { isRetryable } from '../common/retryable';
import { markSpent, RetryLayer } from '../common/retry-policies';
import { S3RequestError } from './s3-errors';
import { describeProxy, proxyAgents, proxyFor, type ProxySettings } from './proxy';
import { type ChecksumAlgorithm, fullObjectChecksums } from './checksums';
// The SDK's JavaScript SigV4A signer, which a Multi-Region Access Point needs (else the SDK asks
// for the native CRT addon); registering it costs about 5 ms and 1 MB at start.
import '@aws-sdk/signature-v4a';

export { S3RequestError } from './s3-errors';
export type { BodySink } from './http-get';

export type { ListedObject, ListPage } from './list-parser';

export type { ChecksumAlgorithm } from './checksums';

/** What S3 says about an object, from HEAD or the headers of a GET. */
export interface ObjectHead {
  size: number;
  etag: string;
  lastModified: Date;
  versionId?: string;
  contentType?: string;
  /** Full-object checksums only (composite multipart checksums cannot be verified from the bytes alone). */
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
  /** True when the ETag is not the MD5 of the bytes (SSE-KMS, SSE-C). */
  etagIsOpaque: boolean;
  /** Present on a HEAD with a part number: how many parts the object was uploaded in. */
  partsCount?: number;
}

/** An object's bytes on their way: read them once into a sink (see body-sinks.ts), or discard them. */
export type ResponseBody = Pick<HttpResponse, 'read' | 'resume' | 'discard'>;

export interface ObjectStream {
  head: ObjectHead;
  /** Bytes in this answer (the range's length for a ranged GET). */
  length: number;
  body: ResponseBody;
}

export interface GetOptions {
  /** Inclusive byte range. */
  range?: { start: number; end: number };
  /** Fail with 412 unless the object still has this ETag (so ranges never mix two versions). */
  ifMatch?: string;
  signal?: AbortSignal;
  /**
   * The object's size as listed or notified: the length of a whole answer that declares none
   * (chunked or close-delimited, both valid HTTP), checked against the bytes that arrive.
   */
  expectedSize?: number;
}

/** RFC 3986 encoding of a key, as S3's canonical URI expects it ("/" kept). */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(rfc3986).join('/');
}

/**
 * Every S3 call the service makes. HEAD goes through the SDK, which also provides the credential
 * chain; listings and object bodies go through a lean signed GET (sigv4.ts, list-parser.ts,
 * http-get.ts), because the SDK costs about 1.5 ms of CPU per GetObject and 20 us per listed key,
 * and node:http about 4 ms per MiB received, which dominate a sync of many small objects, a no-op
 * re-sync and the download of large ones.
 */
@Injectable()
export class S3Repository implements OnApplicationShutdown {
  readonly bucket: string;
  private readonly client: S3Client;
  /** Where the signed GETs go and how they are signed; replaced once when S3 says the bucket is in another region. */
  private route: S3Route;
  private readonly listRetry: RetryLayer;
  private readonly listTimeoutMs: number;
  private readonly maxSockets: number;
  private readonly tls?: { ca: string[] };
  private readonly proxy: ProxySettings;
  private readonly dataPath: DataPath;
  private readonly location: { bucket: string; endpoint?: string; forcePathStyle: boolean };
  /** S3's clock minus ours, learnt from a RequestTimeTooSkewed answer (0 until one comes). */
  private clockOffsetMs = 0;
  private readonly logger = new Logger(S3Repository.name);

  constructor(
    config: AppConfig,
    private readonly clock: Clock,
  ) {
    const { region, bucket, endpoint, forcePathStyle, caBundle, proxy, dataPath, fips, dualStack } = config.s3;
    this.dataPath = dataPath;
    this.proxy = proxy;
    this.bucket = bucket;
    this.maxSockets = config.sync.concurrency + config.sync.multipartConcurrency * 4;
    // Read once at start (preflight has checked it); Node's `ca` replaces its roots, so they are kept beside it.
    this.tls = caBundle ? { ca: [...tls.rootCertificates, readFileSync(caBundle, 'utf8')] } : undefined;
    this.client = new S3Client({
      // The region the signed GETs learnt (see useRegion), so that the SDK's calls need no redirect of their own.
      region: () => Promise.resolve(this.route.region),
      endpoint,
      forcePathStyle,
      credentials: config.awsCredentials,
      maxAttempts: config.sync.retryAttempts + 1,
      // A bucket in another region than AWS_REGION: the SDK re-signs for the region S3 names, as the signed GETs do.
      followRegionRedirects: true,
      // An access point ARN names its region: requests are signed for it, whatever AWS_REGION says.
      useArnRegion: true,
      useFipsEndpoint: fips,
      useDualstackEndpoint: dualStack,
      ...this.requestHandler(),
      // The service verifies bodies itself (see integrity.ts) and must not buffer them for the SDK.
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    this.location = { bucket, endpoint, forcePathStyle };
    this.route = this.routeFor(region);
    this.logger.log(
      { dataPath: dataPath.kind, reason: dataPath.reason },
      dataPath.kind === 'fast'
        ? `listings and objects through the signed GETs (${dataPath.reason})`
        : `listings and objects through the AWS SDK: ${dataPath.reason}`,
    );
    const routeProxy = this.route.http.proxy;
    if (routeProxy) {
      this.logger.log(
        { proxy: describeProxy(routeProxy), noProxy: proxy.noProxy },
        `S3 traffic goes through the proxy ${describeProxy(routeProxy)}`,
      );
    }
    this.listTimeoutMs = config.sync.listTimeoutMs;
    // The listing layer of retry-policies.ts.
    this.listRetry = new RetryLayer(isRetryable, config.sync.retryAttempts);
  }

  private routeFor(region: string): S3Route {
    const location = bucketLocation({ ...this.location, region });
    return {
      region,
      signer: new GetRequestSigner(region),
      ...location,
      http: new HttpGetClient(location.baseUrl, {
        maxSockets: this.maxSockets,
        tls: this.tls,
        proxy: proxyFor(location.baseUrl, this.proxy),
      }),
    };
  }

  /** The SDK's agents: the CA bundle and the proxy, as the signed GETs have them. */
  private requestHandler(): { requestHandler?: { httpAgent?: http.Agent; httpsAgent: https.Agent } } {
    const { httpsProxy, httpProxy } = this.proxy;
    if (httpsProxy || httpProxy) return { requestHandler: proxyAgents(this.proxy, { tls: this.tls }) };
    return this.tls ? { requestHandler: { httpsAgent: new https.Agent({ keepAlive: true, ca: this.tls.ca }) } } : {};
  }

  /** Last shutdown phase: services stop their work in beforeApplicationShutdown. */
  onApplicationShutdown(): void {
    this.route.http.close();
    this.client.destroy();
  }

  /**
   * One page of ListObjectsV2, through the lean signed GET and parser (see list-parser.ts), retried
   * on transient failures like every SDK call.
   */
  listPage(prefix: string, continuationToken?: string, maxKeys = 1000, signal?: AbortSignal): Promise<ListPage> {
    const query: Record<string, string> = { 'list-type': '2', 'max-keys': String(maxKeys) };
    if (prefix) query.prefix = prefix;
    if (continuationToken) query['continuation-token'] = continuationToken;
    if (this.dataPath.kind === 'sdk') return this.listPageWithSdk(prefix, continuationToken, maxKeys, signal);
    return this.listRetry.execute(async () => {
      // Each attempt has LIST_TIMEOUT_SECONDS, body included: a stalled connection is dropped and retried.
      const timeout = AbortSignal.timeout(this.listTimeoutMs);
      const attempt = signal ? AbortSignal.any([signal, timeout]) : timeout;
      // RestoreStatus tells a restored archived object (readable) from one still in GLACIER / DEEP_ARCHIVE.
      const res = await this.signedGet(
        (route) => route.bucketPath,
        query,
        { 'x-amz-optional-object-attributes': 'RestoreStatus' },
        attempt,
      );
      return parseListObjectsV2(await res.bytes());
    }, signal);
  }

  /** ListObjectsV2 through the SDK, which retries it (the SDK layer of retry-policies.ts), each attempt within LIST_TIMEOUT_SECONDS. */
  private async listPageWithSdk(
    prefix: string,
    continuationToken: string | undefined,
    maxKeys: number,
    signal?: AbortSignal,
  ): Promise<ListPage> {
    // The SDK's attempts share this deadline: LIST_TIMEOUT_SECONDS for the whole page, retries included.
    const timeout = AbortSignal.timeout(this.listTimeoutMs);
    const out = await this.sdkCall(
      () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix || undefined,
            ContinuationToken: continuationToken,
            MaxKeys: maxKeys,
            // Directory buckets hold no archived objects and refuse the attribute.
            OptionalObjectAttributes: isDirectoryBucket(this.bucket) ? undefined : ['RestoreStatus'],
          }),
          { abortSignal: signal ? AbortSignal.any([signal, timeout]) : timeout },
        ),
      `LIST ${prefix}`,
    );
    if (out.IsTruncated && !out.NextContinuationToken)
      throw markSpent(new ListParseError('a truncated listing without NextContinuationToken'));
    const objects = (out.Contents ?? []).map((o): ListedObject => {
      const object: ListedObject = {
        key: o.Key ?? '',
        size: o.Size ?? 0,
        etag: stripQuotes(o.ETag),
        lastModified: o.LastModified ?? new Date(0),
      };
      if (o.StorageClass && o.StorageClass !== 'STANDARD') {
        object.storageClass = o.StorageClass;
        if (o.RestoreStatus) object.restore = o.RestoreStatus.IsRestoreInProgress ? 'restoring' : 'restored';
      }
      return object;
    });
    return { objects, nextToken: out.IsTruncated ? out.NextContinuationToken : undefined };
  }

  /** An SDK call whose failure reads as the signed GETs' do (S3RequestError), already retried. */
  private async sdkCall<T>(call: () => Promise<T>, what: string): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof S3ServiceException) {
        const status = err.$metadata.httpStatusCode ?? 500;
        throw markSpent(new S3RequestError(status, err.name, `${what}: ${err.name}: ${err.message}`));
      }
      throw err instanceof Error ? markSpent(err) : err;
    }
  }

  /**
   * The pages of a listing, the next one asked for before this one is handed over: a page's round
   * trip (tens of milliseconds on S3) is then hidden behind the work on the page before it.
   */
  async *list(prefix: string, signal?: AbortSignal): AsyncGenerator<ListedObject[]> {
    const ask = (token: string | undefined): Promise<ListPage> => {
      const page = this.listPage(prefix, token, 1000, signal);
      // Handled now, reported when awaited: a page that fails while the one before is worked on must
      // not count as an unhandled rejection (which ends the process), nor when nobody reads it.
      page.catch(() => undefined);
      return page;
    };
    let next: Promise<ListPage> | undefined = ask(undefined);
    while (next) {
      const page: ListPage = await next;
      next = page.nextToken ? ask(page.nextToken) : undefined;
      yield page.objects;
    }
  }

  /**
   * Stores a body in another bucket (the bundle archive): one PutObject when it is small, a
   * multipart upload in 8 MiB parts when it is not (lib-storage decides).
   */
  async upload(bucket: string, key: string, body: Buffer | Readable, contentType: string): Promise<{ etag?: string }> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: bucket, Key: key, Body: body, ContentType: contentType },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
    });
    const out = await upload.done();
    return { etag: out.ETag ? stripQuotes(out.ETag) : undefined };
  }

  /** An object of another bucket as a stream, with its length. */
  async openObject(bucket: string, key: string): Promise<{ body: Readable; length: number }> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { body: out.Body as Readable, length: out.ContentLength ?? 0 };
  }

  async headBucket(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  /** HEAD an object; undefined when it does not exist. With `partNumber`, S3 answers for that part. */
  async headObject(key: string, partNumber?: number, signal?: AbortSignal): Promise<ObjectHead | undefined> {
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key, PartNumber: partNumber, ChecksumMode: 'ENABLED' }),
        { abortSignal: signal },
      );
      return { ...headOfSdkAnswer(out, partNumber === undefined), partsCount: out.PartsCount };
    } catch (err) {
      if (err instanceof NotFound || (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404)) return undefined;
      // The SDK has retried it already (the HEAD layer of retry-policies.ts).
      throw err instanceof Error ? markSpent(err) : err;
    }
  }

  /** Opens an object (or a byte range of it). Rejects with S3RequestError on a non-2xx answer. */
  async getObject(key: string, options: GetOptions = {}): Promise<ObjectStream> {
    if (this.dataPath.kind === 'sdk') return this.getObjectWithSdk(key, options);
    const headers: Record<string, string> = { 'x-amz-checksum-mode': 'ENABLED' };
    if (options.range) headers.range = `bytes=${options.range.start}-${options.range.end}`;
    if (options.ifMatch) headers['if-match'] = `"${options.ifMatch}"`;
    const res = await this.signedGet((route) => route.pathPrefix + encodeKeyPath(key), {}, headers, options.signal);
    // No Content-Length (chunked or close-delimited): a range's length is its own, a whole object's the size it was listed with.
    const { range } = options;
    const length = res.length ?? (range ? range.end - range.start + 1 : options.expectedSize);
    if (length === undefined) {
      res.discard();
      throw new S3RequestError(
        502,
        'NoContentLength',
        `GET ${key}: the answer declares no Content-Length and the object's size is not known`,
      );
    }
    return { head: headFromHeaders(res.headers, range ? undefined : length), length, body: res };
  }

  private async getObjectWithSdk(key: string, options: GetOptions): Promise<ObjectStream> {
    const { range } = options;
    const out = await this.sdkCall(
      () =>
        this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Range: range && `bytes=${range.start}-${range.end}`,
            IfMatch: options.ifMatch && `"${options.ifMatch}"`,
            ChecksumMode: 'ENABLED',
          }),
          { abortSignal: options.signal },
        ),
      `GET ${key}`,
    );
    const body = out.Body as Readable;
    const length = out.ContentLength ?? (range ? range.end - range.start + 1 : (options.expectedSize ?? 0));
    const total = out.ContentRange ? Number(out.ContentRange.split('/')[1]) : length;
    return { head: { ...headOfSdkAnswer(out, !range), size: total }, length, body: readableBody(body) };
  }

  /** A SigV4-signed GET; resolves with a 2xx response, else rejects with S3RequestError. */
  private async signedGet(
    pathOf: (route: S3Route) => string,
    query: Record<string, string>,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    // The SDK's provider chain caches and refreshes credentials (env, profile, SSO, IMDS, ECS...).
    let credentials: Awaited<ReturnType<S3Client['config']['credentials']>>;
    try {
      credentials = await this.client.config.credentials();
    } catch (err) {
      // The deployment's configuration, not a fault of the request: 503 with the reason.
      throw new AppError('UNAVAILABLE', `no AWS credentials for S3: ${errorMessage(err)}`);
    }
    const search = canonicalQueryString(query);
    let clockCorrected = false;
    let regionFollowed = false;
    for (;;) {
      const route = this.route;
      const path = pathOf(route);
      const signed = route.signer.sign(
        credentials,
        route.baseUrl.host,
        path,
        { 'x-amz-content-sha256': UNSIGNED_PAYLOAD, ...headers },
        new Date(this.clock.nowMs() + this.clockOffsetMs),
        query,
      );
      const res = await route.http.get(search ? `${path}?${search}` : path, signed, signal);
      if (res.status >= 200 && res.status < 300) return res;
      const text = await res.text(4096);
      const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? String(res.status);
      const message = /<Message>([^<]+)<\/Message>/.exec(text)?.[1] ?? `HTTP ${res.status}`;
      // As the SDK does: a clock off by more than S3's 15 minutes is corrected from the answer's Date, and the request signed again.
      if (!clockCorrected && res.status === 403 && code === 'RequestTimeTooSkewed' && this.correctClock(res.headers.date)) {
        clockCorrected = true;
        continue;
      }
      // As the SDK's followRegionRedirects: the bucket's region, once learnt, is used for every later request.
      const region = regionOfRedirect(res.status, code, res.headers, text);
      if (!regionFollowed && region && region !== route.region) {
        regionFollowed = true;
        this.useRegion(region);
        continue;
      }
      throw new S3RequestError(res.status, code, `GET ${path}: ${code}: ${message}`);
    }
  }

  private useRegion(region: string): void {
    const previous = this.route;
    if (previous.region === region) return;
    this.route = this.routeFor(region);
    this.logger.warn(
      { bucket: this.bucket, configured: previous.region, region, endpoint: this.route.baseUrl.origin },
      'the bucket is in another region than AWS_REGION: following it (set AWS_REGION to skip the redirect)',
    );
    // Requests in flight on the old connections finish there (their sockets close once read); new ones take the new route.
    previous.http.close();
  }

  /** Takes S3's clock from a Date header as the signing time's offset; false when the header says nothing usable. */
  private correctClock(date: string | undefined): boolean {
    const serverMs = date ? Date.parse(date) : NaN;
    if (Number.isNaN(serverMs)) return false;
    const offset = serverMs - this.clock.nowMs();
    this.logger.warn({ offsetSeconds: Math.round(offset / 1000) }, "the local clock is off from S3's: signing with S3's time");
    this.clockOffsetMs = offset;
    return true;
  }
}

interface S3Route {
  region: string;
  signer: GetRequestSigner;
  baseUrl: URL;
  pathPrefix: string;
  /** The bucket's own path, for bucket-level requests such as listing. */
  bucketPath: string;
  http: HttpGetClient;
}

const REGION_NAME = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/**
 * The region S3 says the bucket is in, from an answer refusing a request sent to the wrong one:
 * `301 PermanentRedirect`, `307 TemporaryRedirect` or `400 AuthorizationHeaderMalformed`, with the
 * region in `x-amz-bucket-region` or in the error document's `<Region>`.
 */
export function regionOfRedirect(
  status: number,
  code: string,
  headers: Readonly<Record<string, string>>,
  body: string,
): string | undefined {
  const redirect = status === 301 || status === 307 || (status === 400 && code === 'AuthorizationHeaderMalformed');
  if (!redirect) return undefined;
  const region = headers['x-amz-bucket-region'] ?? /<Region>([^<]+)<\/Region>/.exec(body)?.[1];
  return region && REGION_NAME.test(region) ? region : undefined;
}

/**
 * Where the bucket's requests go, as the SDK addresses them: path style (`/bucket/key`) when asked
 * or when the bucket name has dots (a virtual host would break TLS), else virtual-hosted, the
 * bucket in the host, for AWS's endpoint and a custom one alike.
 */
export function bucketLocation(s3: { bucket: string; region: string; endpoint?: string; forcePathStyle: boolean }): {
  baseUrl: URL;
  pathPrefix: string;
  bucketPath: string;
} {
  const { bucket, region, endpoint, forcePathStyle } = s3;
  const pathStyle = forcePathStyle || bucket.includes('.');
  const baseUrl = new URL(endpoint ?? `https://s3.${region}.amazonaws.com`);
  if (!pathStyle) baseUrl.hostname = `${bucket}.${baseUrl.hostname}`;
  const basePath = baseUrl.pathname.replace(/\/$/, '');
  return pathStyle
    ? { baseUrl, pathPrefix: `${basePath}/${bucket}/`, bucketPath: `${basePath}/${bucket}` }
    : { baseUrl, pathPrefix: `${basePath}/`, bucketPath: `${basePath}/` };
}

/** What a HeadObject or GetObject answer of the SDK says of the object; `whole`: not a part or a range, so its checksums are the object's. */
function headOfSdkAnswer(out: HeadObjectCommandOutput | GetObjectCommandOutput, whole: boolean): ObjectHead {
  const checksums = fullObjectChecksums((spec) => {
    const value = out[spec.sdkField as keyof typeof out];
    return typeof value === 'string' ? value : undefined;
  }, out.ChecksumType === 'COMPOSITE');
  return {
    size: out.ContentLength ?? 0,
    etag: stripQuotes(out.ETag),
    lastModified: out.LastModified ?? new Date(0),
    versionId: out.VersionId,
    contentType: out.ContentType,
    checksums: whole ? checksums : {},
    etagIsOpaque:
      out.ServerSideEncryption === 'aws:kms' || out.ServerSideEncryption === 'aws:kms:dsse' || Boolean(out.SSECustomerAlgorithm),
  };
}

/** A body the SDK received (a Readable) read into a sink like the signed GETs' bodies. */
function readableBody(stream: Readable): ResponseBody {
  let sink: BodySink | undefined;
  let rest: Buffer | undefined;
  const pump = (chunk: Buffer): void => {
    const current = sink!;
    const result = copyChunk(
      chunk,
      () => current.space(chunk.length),
      (n) => current.filled(n),
    );
    if (result.paused) {
      stream.pause();
      rest = result.rest;
    }
  };
  return {
    read: (into) =>
      new Promise<void>((resolve, reject) => {
        if (sink) throw new Error('the body is already being read');
        sink = into;
        stream.on('data', pump);
        stream.once('end', resolve);
        stream.once('error', reject);
        stream.once('close', () => {
          if (!stream.readableEnded) reject(Object.assign(new Error('connection closed before the body ended'), { code: 'ECONNRESET' }));
        });
      }),
    resume: () => {
      const pending = rest;
      rest = undefined;
      if (pending) pump(pending);
      if (!rest && stream.isPaused()) stream.resume();
    },
    discard: () => stream.destroy(),
  };
}

/** `wholeLength`: the bytes of a whole-object answer, which is the object's size (Content-Length or, without it, the listed size). */
function headFromHeaders(headers: Readonly<Record<string, string>>, wholeLength?: number): ObjectHead {
  const range = headers['content-range'];
  const total = range ? Number(range.split('/')[1]) : (wholeLength ?? Number(headers['content-length'] ?? 0));
  // A ranged GET carries no checksum of its own.
  const checksums = range ? {} : fullObjectChecksums((spec) => headers[spec.header], headers['x-amz-checksum-type'] === 'COMPOSITE');
  const sse = headers['x-amz-server-side-encryption'];
  return {
    size: total,
    etag: stripQuotes(headers.etag),
    lastModified: new Date(headers['last-modified'] ?? 0),
    versionId: headers['x-amz-version-id'],
    contentType: headers['content-type'],
    checksums,
    etagIsOpaque: sse === 'aws:kms' || sse === 'aws:kms:dsse' || Boolean(headers['x-amz-server-side-encryption-customer-algorithm']),
  };
}

import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, NotFound, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { ExponentialBackoff, handleWhen, retry, RetryPolicy } from 'cockatiel';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import http, { IncomingMessage } from 'node:http';
import https from 'node:https';
import { AppConfig } from '../config/app-config';
import { ListedObject, ListPage, parseListObjectsV2, stripQuotes } from './list-parser';
import { canonicalQueryString, GetRequestSigner, rfc3986, UNSIGNED_PAYLOAD } from './sigv4';
import { isTransient, S3RequestError } from './s3-errors';

export { S3RequestError } from './s3-errors';

export type { ListedObject, ListPage } from './list-parser';

export type ChecksumAlgorithm = 'crc64nvme' | 'crc32c' | 'crc32' | 'sha256' | 'sha1';
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['crc64nvme', 'crc32c', 'crc32', 'sha256', 'sha1'];

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

export interface ObjectStream {
  head: ObjectHead;
  body: IncomingMessage;
}

export interface GetOptions {
  /** Inclusive byte range. */
  range?: { start: number; end: number };
  /** Fail with 412 unless the object still has this ETag (so ranges never mix two versions). */
  ifMatch?: string;
  signal?: AbortSignal;
}

/** RFC 3986 encoding of a key, as S3's canonical URI expects it ("/" kept). */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(rfc3986).join('/');
}

/**
 * Every S3 call the service makes. HEAD goes through the SDK, which also provides the credential
 * chain; listings and object bodies go through a lean signed GET on a keep-alive agent (sigv4.ts,
 * list-parser.ts), because the SDK costs about 1.5 ms of CPU per GetObject and 20 us per listed
 * key, which dominate a sync of many small objects and a no-op re-sync.
 */
@Injectable()
export class S3Repository implements OnApplicationShutdown {
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly signer: GetRequestSigner;
  private readonly baseUrl: URL;
  private readonly pathPrefix: string;
  /** The bucket's own path, for bucket-level requests such as listing. */
  private readonly bucketPath: string;
  private readonly listRetry: RetryPolicy;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(config: AppConfig) {
    const { region, bucket, endpoint, forcePathStyle } = config.s3;
    this.bucket = bucket;
    const maxSockets = config.sync.concurrency + config.sync.multipartConcurrency * 4;
    this.client = new S3Client({
      region,
      endpoint,
      forcePathStyle,
      maxAttempts: config.sync.retryAttempts + 1,
      // The service verifies bodies itself (see integrity.ts) and must not buffer them for the SDK.
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    this.signer = new GetRequestSigner(region);
    const pathStyle = forcePathStyle || bucket.includes('.');
    const base = endpoint ?? (pathStyle ? `https://s3.${region}.amazonaws.com` : `https://${bucket}.s3.${region}.amazonaws.com`);
    this.baseUrl = new URL(base);
    const basePath = this.baseUrl.pathname.replace(/\/$/, '');
    this.pathPrefix = pathStyle ? `${basePath}/${bucket}/` : `${basePath}/`;
    this.bucketPath = pathStyle ? `${basePath}/${bucket}` : `${basePath}/`;
    this.listRetry = retry(handleWhen(isTransient), {
      maxAttempts: config.sync.retryAttempts,
      backoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 10_000 }),
    });
    const isHttps = this.baseUrl.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
    this.agent = isHttps ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.request = isHttps ? https.request : http.request;
  }

  /** Last shutdown phase: services stop their work in beforeApplicationShutdown. */
  onApplicationShutdown(): void {
    this.agent.destroy();
    this.client.destroy();
  }

  /**
   * One page of ListObjectsV2, through the lean signed GET and parser (see list-parser.ts), retried
   * on transient failures like every SDK call.
   */
  listPage(prefix: string, continuationToken?: string, maxKeys = 1000): Promise<ListPage> {
    const query: Record<string, string> = { 'list-type': '2', 'max-keys': String(maxKeys) };
    if (prefix) query.prefix = prefix;
    if (continuationToken) query['continuation-token'] = continuationToken;
    return this.listRetry.execute(async () => {
      const res = await this.signedGet(this.bucketPath, query, {});
      return parseListObjectsV2(await readText(res));
    });
  }

  async *list(prefix: string): AsyncGenerator<ListedObject[]> {
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, token);
      yield page.objects;
      token = page.nextToken;
    } while (token);
  }

  /**
   * Stores a body in another bucket (the bundle archive): one PutObject when it is small, a
   * multipart upload in 8 MiB parts when it is not (lib-storage decides).
   */
  async upload(bucket: string, key: string, body: Buffer | Readable, contentType: string): Promise<{ etag?: string }> {
    const upload = new Upload({ client: this.client, params: { Bucket: bucket, Key: key, Body: body, ContentType: contentType }, partSize: 8 * 1024 * 1024, queueSize: 4 });
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
  async headObject(key: string, partNumber?: number): Promise<ObjectHead | undefined> {
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key, PartNumber: partNumber, ChecksumMode: 'ENABLED' }),
      );
      const checksums: ObjectHead['checksums'] = {};
      const fullObject = out.ChecksumType !== 'COMPOSITE';
      const values: Record<ChecksumAlgorithm, string | undefined> = {
        crc64nvme: out.ChecksumCRC64NVME,
        crc32c: out.ChecksumCRC32C,
        crc32: out.ChecksumCRC32,
        sha256: out.ChecksumSHA256,
        sha1: out.ChecksumSHA1,
      };
      for (const alg of CHECKSUM_ALGORITHMS) {
        const v = values[alg];
        if (v && fullObject && !v.includes('-')) checksums[alg] = v;
      }
      return {
        size: out.ContentLength ?? 0,
        etag: stripQuotes(out.ETag),
        lastModified: out.LastModified ?? new Date(0),
        versionId: out.VersionId,
        contentType: out.ContentType,
        checksums: partNumber === undefined ? checksums : {},
        etagIsOpaque: out.ServerSideEncryption === 'aws:kms' || out.ServerSideEncryption === 'aws:kms:dsse' || Boolean(out.SSECustomerAlgorithm),
        partsCount: out.PartsCount,
      };
    } catch (err) {
      if (err instanceof NotFound || (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404)) return undefined;
      throw err;
    }
  }

  /** Streams an object (or a byte range of it). Rejects with S3RequestError on a non-2xx answer. */
  async getObject(key: string, options: GetOptions = {}): Promise<ObjectStream> {
    const headers: Record<string, string> = { 'x-amz-checksum-mode': 'ENABLED' };
    if (options.range) headers.range = `bytes=${options.range.start}-${options.range.end}`;
    if (options.ifMatch) headers['if-match'] = `"${options.ifMatch}"`;
    const res = await this.signedGet(this.pathPrefix + encodeKeyPath(key), {}, headers, options.signal);
    return { head: headFromHeaders(res), body: res };
  }

  /** A SigV4-signed GET on the keep-alive agent; resolves with a 2xx response, else rejects with S3RequestError. */
  private async signedGet(path: string, query: Record<string, string>, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    // The SDK's provider chain caches and refreshes credentials (env, profile, SSO, IMDS, ECS...).
    const credentials = await this.client.config.credentials();
    const signed = this.signer.sign(credentials, this.baseUrl.host, path, { 'x-amz-content-sha256': UNSIGNED_PAYLOAD, ...headers }, new Date(), query);
    const search = canonicalQueryString(query);
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.request({
        agent: this.agent,
        protocol: this.baseUrl.protocol,
        hostname: this.baseUrl.hostname,
        port: this.baseUrl.port || undefined,
        method: 'GET',
        path: search ? `${path}?${search}` : path,
        headers: signed,
        signal,
      });
      req.once('error', reject);
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        readText(res, 4096).then((text) => {
          const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? String(status);
          const message = /<Message>([^<]+)<\/Message>/.exec(text)?.[1] ?? `HTTP ${status}`;
          reject(new S3RequestError(status, code, `GET ${path}: ${code}: ${message}`));
        }, reject);
      });
      req.end();
    });
  }
}

/** The body as text (at most `limit` characters are kept). */
function readText(res: IncomingMessage, limit = Infinity): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      if (size < limit) chunks.push(c);
      size += c.length;
    });
    res.once('error', reject);
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function headFromHeaders(res: IncomingMessage): ObjectHead {
  const range = header(res, 'content-range');
  const total = range ? Number(range.split('/')[1]) : Number(header(res, 'content-length') ?? 0);
  const checksums: ObjectHead['checksums'] = {};
  // A ranged GET carries no checksum of its own; a composite one ends in -N.
  if (!range && header(res, 'x-amz-checksum-type') !== 'COMPOSITE') {
    for (const alg of CHECKSUM_ALGORITHMS) {
      const v = header(res, `x-amz-checksum-${alg}`);
      if (v && !v.includes('-')) checksums[alg] = v;
    }
  }
  const sse = header(res, 'x-amz-server-side-encryption');
  return {
    size: total,
    etag: stripQuotes(header(res, 'etag')),
    lastModified: new Date(header(res, 'last-modified') ?? 0),
    versionId: header(res, 'x-amz-version-id'),
    contentType: header(res, 'content-type'),
    checksums,
    etagIsOpaque: sse === 'aws:kms' || sse === 'aws:kms:dsse' || Boolean(header(res, 'x-amz-server-side-encryption-customer-algorithm')),
  };
}

import { createHash, createHmac } from 'node:crypto';

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/**
 * AWS Signature Version 4 for S3 GET requests with an unsigned payload. The SDK's signer costs
 * about 45 us per request (it re-derives a cache key with an HMAC of the secret each time and
 * copies every header several times); this one does one SHA-256 and one HMAC per request, the
 * signing key being derived once a day. Checked against AWS's documented example and the SDK's
 * own signer in sigv4.spec.ts.
 */
export class GetRequestSigner {
  private keyScope = '';
  private key: Buffer = Buffer.alloc(0);

  constructor(
    private readonly region: string,
    private readonly service = 's3',
  ) {}

  /**
   * Returns the headers to send: `headers` (lower-case names, values as sent) plus x-amz-date,
   * x-amz-security-token and authorization. `path` must already be URI-encoded; `query` pairs are
   * encoded here.
   */
  sign(
    credentials: SigningCredentials,
    host: string,
    path: string,
    headers: Record<string, string>,
    now: Date,
    query: Record<string, string> = {},
  ): Record<string, string> {
    const amzDate = now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const day = amzDate.slice(0, 8);
    const all: Record<string, string> = { ...headers, host, 'x-amz-date': amzDate };
    if (credentials.sessionToken) all['x-amz-security-token'] = credentials.sessionToken;
    const names = Object.keys(all).sort();
    const signedHeaders = names.join(';');
    let canonicalHeaders = '';
    for (const name of names) canonicalHeaders += `${name}:${all[name].trim().replace(/\s+/g, ' ')}\n`;
    const canonicalQuery = canonicalQueryString(query);
    const payloadHash = all['x-amz-content-sha256'] ?? UNSIGNED_PAYLOAD;
    const canonicalRequest = `GET\n${path}\n${canonicalQuery}\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
    const scope = `${day}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
    const signature = createHmac('sha256', this.signingKey(credentials.secretAccessKey, day, scope))
      .update(stringToSign)
      .digest('hex');
    const { host: _host, ...toSend } = all;
    toSend.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return toSend;
  }

  private signingKey(secret: string, day: string, scope: string): Buffer {
    const cacheScope = `${scope}\n${secret}`;
    if (cacheScope !== this.keyScope) {
      const kDate = createHmac('sha256', `AWS4${secret}`).update(day).digest();
      const kRegion = createHmac('sha256', kDate).update(this.region).digest();
      const kService = createHmac('sha256', kRegion).update(this.service).digest();
      this.key = createHmac('sha256', kService).update('aws4_request').digest();
      this.keyScope = cacheScope;
    }
    return this.key;
  }
}

/** The query as SigV4 signs it; sending it in this same form keeps request and signature in step. */
export function canonicalQueryString(query: Record<string, string>): string {
  return Object.keys(query)
    .sort()
    .map((k) => `${rfc3986(k)}=${rfc3986(query[k])}`)
    .join('&');
}

/** RFC 3986 encoding, as SigV4 canonical strings require. */
export function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

import { SignatureV4 } from '@smithy/signature-v4';
import { GetRequestSigner, rfc3986 } from './sigv4';
import { Sha256 } from '../../test/support/sdk-sha256';

const EXAMPLE = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('GetRequestSigner', () => {
  it("reproduces AWS's documented S3 GET example (Signature Version 4, header-based auth)", () => {
    const headers = new GetRequestSigner('us-east-1').sign(
      EXAMPLE,
      'examplebucket.s3.amazonaws.com',
      '/test.txt',
      { range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY_SHA256 },
      new Date('2013-05-24T00:00:00Z'),
    );
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
        'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(headers['x-amz-date']).toBe('20130524T000000Z');
    expect(headers.host).toBeUndefined();
  });

  it.each([
    ['/bucket/plain.txt', {}, {}],
    ['/bucket/caf%C3%A9%20menu/a%2Bb.txt', { 'if-match': '"abc"', 'x-amz-checksum-mode': 'ENABLED' }, {}],
    ['/bucket/k', { range: 'bytes=100-199' }, { partNumber: '1', 'x-id': 'GetObject' }],
  ])('signs %s exactly as the AWS SDK signer does, with a session token too', async (path, extra, query) => {
    const credentials = { ...EXAMPLE, sessionToken: 'token/with+chars==' };
    const now = new Date('2026-11-23T10:11:12Z');
    const headers = { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...extra };
    const mine = new GetRequestSigner('eu-west-3').sign(credentials, '127.0.0.1:9000', path, headers, now, query);
    const sdk = await new SignatureV4({
      credentials,
      region: 'eu-west-3',
      service: 's3',
      sha256: Sha256,
      uriEscapePath: false,
      applyChecksum: false,
    }).sign(
      { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 9000, path, query, headers: { ...headers, host: '127.0.0.1:9000' } },
      { signingDate: now },
    );
    expect(mine.authorization).toBe(sdk.headers.authorization);
    expect(mine['x-amz-security-token']).toBe(credentials.sessionToken);
  });

  it('derives the signing key again when the day or the secret changes', () => {
    const signer = new GetRequestSigner('us-east-1');
    const sign = (secret: string, when: string) =>
      signer.sign({ accessKeyId: 'A', secretAccessKey: secret }, 'h', '/k', {}, new Date(when)).authorization;
    const a = sign('s1', '2026-01-01T23:59:59Z');
    expect(sign('s1', '2026-01-01T23:59:59Z')).toBe(a);
    expect(sign('s1', '2026-01-02T00:00:00Z')).not.toBe(a);
    expect(sign('s2', '2026-01-01T23:59:59Z')).not.toBe(a);
  });

  it('encodes per RFC 3986', () => {
    expect(rfc3986("a b+c!'()*~")).toBe('a%20b%2Bc%21%27%28%29%2A~');
  });
});

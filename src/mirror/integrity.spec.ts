import { createHash } from 'node:crypto';
import { S3_CHECKSUMS } from '../aws/checksums';
import { chooseVerification, createDigest, multipartEtag, multipartPartCount } from './integrity';

const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');
const none = { etagIsOpaque: false, checksums: {} };

describe('chooseVerification', () => {
  it('uses MD5 for a single-part ETag', () => {
    expect(chooseVerification({ ...none, etag: 'D41D8CD98F00B204E9800998ECF8427E' }, true)).toEqual({
      method: 'md5',
      expected: 'd41d8cd98f00b204e9800998ecf8427e',
    });
  });

  it('does not trust the ETag of an SSE-KMS / SSE-C object', () => {
    expect(chooseVerification({ ...none, etag: md5('x'), etagIsOpaque: true }, true)).toEqual({ method: 'size' });
    expect(chooseVerification({ etag: md5('x'), etagIsOpaque: true, checksums: { crc32: 'AAAAAA==' } }, true)).toEqual({
      method: 'crc32',
      expected: 'AAAAAA==',
    });
  });

  it('uses the multipart ETag only when the part size is known', () => {
    const etag = `${md5('x')}-3`;
    expect(chooseVerification({ ...none, etag, partSize: 8 }, true)).toEqual({ method: 'multipart-etag', expected: etag, partSize: 8 });
    expect(chooseVerification({ ...none, etag }, true)).toEqual({ method: 'size' });
  });

  it('prefers the fastest S3 checksum for a multipart object of unknown part size', () => {
    const checksums = { crc64nvme: 'a', crc32c: 'b', sha256: 'c', crc32: 'd' };
    expect(chooseVerification({ ...none, etag: `${md5('x')}-2`, checksums }, true)).toEqual({ method: 'crc32', expected: 'd' });
    expect(chooseVerification({ ...none, etag: `${md5('x')}-2`, checksums: { crc64nvme: 'a' } }, true)).toEqual({
      method: 'crc64nvme',
      expected: 'a',
    });
  });

  it('checks nothing when verification is off', () => {
    expect(chooseVerification({ ...none, etag: md5('x') }, false)).toEqual({ method: 'none' });
  });
});

describe('digests', () => {
  const fox = Buffer.from('The quick brown fox jumps over the lazy dog');
  const digits = Buffer.from('123456789');
  const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

  // Published check values: RFC 1321 / FIPS 180 for the hashes, the CRC catalogue's "123456789"
  // check for the CRCs, xxHash's own test vectors.
  it.each([
    ['md5', fox, '9e107d9d372bb6826bd81d3542a419d6'],
    ['checksum-md5', fox, b64('9e107d9d372bb6826bd81d3542a419d6')],
    ['sha1', fox, b64('2fd4e1c67a2d28fced849ee1bb76e7391b93eb12')],
    ['sha256', fox, b64('d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592')],
    [
      'sha512',
      fox,
      b64(
        '07e547d9586f6a73f73fbac0435ed76951218fb7d0c8d788a309d785436bbb642e93a252a954f23912547d1e8a3b5ed6e1bfd7097821233fa0538f3db854fee6',
      ),
    ],
    ['crc32', digits, b64('cbf43926')],
    ['crc32c', digits, b64('e3069283')],
    ['crc64nvme', digits, b64('ae8b14860a799888')],
    ['xxhash64', Buffer.from('a'), b64('d24ec4f1a98c6e5b')],
    ['xxhash3', Buffer.alloc(0), b64('2d06800538d394c2')],
    ['xxhash128', Buffer.alloc(0), b64('99aa06d3014798d86001c324468d497f')],
  ] as const)('%s matches the reference value, fed in pieces', async (method, data, expected) => {
    const digest = (await createDigest(method))!;
    digest.update(data.subarray(0, 3));
    digest.update(data.subarray(3));
    expect(digest.result()).toBe(expected);
  });

  it('knows every checksum the SDK models, by header and by HeadObject field', () => {
    expect(S3_CHECKSUMS.map((c) => `${c.header} ${String(c.sdkField)}`)).toEqual([
      'x-amz-checksum-crc32 ChecksumCRC32',
      'x-amz-checksum-xxhash3 ChecksumXXHASH3',
      'x-amz-checksum-xxhash64 ChecksumXXHASH64',
      'x-amz-checksum-xxhash128 ChecksumXXHASH128',
      'x-amz-checksum-crc32c ChecksumCRC32C',
      'x-amz-checksum-crc64nvme ChecksumCRC64NVME',
      'x-amz-checksum-md5 ChecksumMD5',
      'x-amz-checksum-sha1 ChecksumSHA1',
      'x-amz-checksum-sha256 ChecksumSHA256',
      'x-amz-checksum-sha512 ChecksumSHA512',
    ]);
  });

  it('has no whole-object digest for size / none / multipart', async () => {
    await expect(createDigest('size')).resolves.toBeUndefined();
    await expect(createDigest('none')).resolves.toBeUndefined();
    await expect(createDigest('multipart-etag')).resolves.toBeUndefined();
  });
});

describe('multipart ETag', () => {
  it('is the MD5 of the part MD5s and the part count, as S3 computes it', () => {
    const parts = [Buffer.alloc(5, 1), Buffer.alloc(5, 2), Buffer.alloc(3, 3)];
    const partMd5s = parts.map((p) => createHash('md5').update(p).digest());
    const expected = `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-3`;
    expect(multipartEtag(partMd5s)).toBe(expected);
    expect(multipartPartCount(expected)).toBe(3);
    expect(multipartPartCount(md5('x'))).toBeUndefined();
  });
});

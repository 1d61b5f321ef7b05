import { createHash } from 'node:crypto';
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
  const data = Buffer.from('The quick brown fox jumps over the lazy dog');

  it.each([
    ['md5', '9e107d9d372bb6826bd81d3542a419d6'],
    ['sha1', Buffer.from('2fd4e1c67a2d28fced849ee1bb76e7391b93eb12', 'hex').toString('base64')],
    ['sha256', Buffer.from('d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592', 'hex').toString('base64')],
    ['crc32', Buffer.from('414fa339', 'hex').toString('base64')],
    ['crc32c', Buffer.from('22620404', 'hex').toString('base64')],
  ] as const)('%s matches the reference value, fed in pieces', async (method, expected) => {
    const digest = createDigest(method)!;
    digest.update(data.subarray(0, 10));
    digest.update(data.subarray(10));
    await expect(digest.result()).resolves.toBe(expected);
  });

  it('has no whole-object digest for size / none / multipart', () => {
    expect(createDigest('size')).toBeUndefined();
    expect(createDigest('none')).toBeUndefined();
    expect(createDigest('multipart-etag')).toBeUndefined();
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

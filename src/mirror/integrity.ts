import { Crc32c, Crc64Nvme } from '../aws/checksums';
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { ChecksumAlgorithm } from '../aws/s3.repository';
import type { VerificationMethod } from '../state/manifest.store';

/** What a downloaded object is checked against. */
export interface Verification {
  method: VerificationMethod;
  /** hex for md5 / multipart-etag, base64 for S3 checksums; absent for size / none. */
  expected?: string;
  /** For multipart-etag: the part size the object was uploaded with. */
  partSize?: number;
}

export interface VerificationInput {
  etag: string;
  etagIsOpaque: boolean;
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
  /** Learnt from a HEAD with PartNumber=1, when S3 could tell. */
  partSize?: number;
}

const SINGLE_PART_ETAG = /^[0-9a-f]{32}$/i;
const MULTIPART_ETAG = /^[0-9a-f]{32}-(\d+)$/i;
/** Fastest first: CRC32 is native (zlib), the others are hashed in JS or by OpenSSL. */
const CHECKSUM_PREFERENCE: readonly ChecksumAlgorithm[] = ['crc32', 'sha256', 'sha1', 'crc32c', 'crc64nvme'];

export function multipartPartCount(etag: string): number | undefined {
  const m = MULTIPART_ETAG.exec(etag);
  return m ? Number(m[1]) : undefined;
}

/**
 * Picks the strongest check that is cheap to compute: MD5 of a plain single-part ETag, the
 * multipart ETag when the part size is known, an S3 full-object checksum, and the size otherwise.
 */
export function chooseVerification(input: VerificationInput, verify: boolean): Verification {
  if (!verify) return { method: 'none' };
  if (!input.etagIsOpaque && SINGLE_PART_ETAG.test(input.etag)) return { method: 'md5', expected: input.etag.toLowerCase() };
  if (!input.etagIsOpaque && MULTIPART_ETAG.test(input.etag) && input.partSize) {
    return { method: 'multipart-etag', expected: input.etag.toLowerCase(), partSize: input.partSize };
  }
  for (const alg of CHECKSUM_PREFERENCE) {
    const expected = input.checksums[alg];
    if (expected) return { method: alg, expected };
  }
  return { method: 'size' };
}

/** An incremental digest producing the same text form S3 uses for that method. */
export interface Digest {
  update(chunk: Uint8Array): void;
  result(): Promise<string>;
}

class NodeHashDigest implements Digest {
  private readonly hash: Hash;
  constructor(
    algorithm: 'md5' | 'sha1' | 'sha256',
    private readonly encoding: 'hex' | 'base64',
  ) {
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  result(): Promise<string> {
    return Promise.resolve(this.hash.digest(this.encoding));
  }
}

class Crc32Digest implements Digest {
  private value = 0;
  update(chunk: Uint8Array): void {
    this.value = crc32(chunk, this.value);
  }
  result(): Promise<string> {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.value >>> 0);
    return Promise.resolve(out.toString('base64'));
  }
}

class SdkChecksumDigest implements Digest {
  constructor(private readonly impl: { update(d: Uint8Array): void; digest(): Promise<Uint8Array> }) {}
  update(chunk: Uint8Array): void {
    this.impl.update(chunk);
  }
  async result(): Promise<string> {
    return Buffer.from(await this.impl.digest()).toString('base64');
  }
}

/** A digest for a whole-object method; undefined for methods that hash nothing (size, none) or per part. */
export function createDigest(method: VerificationMethod): Digest | undefined {
  switch (method) {
    case 'md5':
      return new NodeHashDigest('md5', 'hex');
    case 'sha1':
      return new NodeHashDigest('sha1', 'base64');
    case 'sha256':
      return new NodeHashDigest('sha256', 'base64');
    case 'crc32':
      return new Crc32Digest();
    case 'crc32c':
      return new SdkChecksumDigest(new Crc32c());
    case 'crc64nvme':
      return new SdkChecksumDigest(new Crc64Nvme());
    default:
      return undefined;
  }
}

/** S3's multipart ETag: MD5 of the concatenated binary MD5s of the parts, then "-" and the part count. */
export function multipartEtag(partMd5s: readonly Buffer[]): string {
  const h = createHash('md5');
  for (const p of partMd5s) h.update(p);
  return `${h.digest('hex')}-${partMd5s.length}`;
}

import { type ChecksumAlgorithm, type ChecksumHasher, checksumOfMethod, S3_CHECKSUMS } from '../aws/checksums';
import { createHash } from 'node:crypto';
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
  for (const spec of S3_CHECKSUMS) {
    const expected = input.checksums[spec.algorithm];
    if (expected) return { method: spec.method, expected };
  }
  return { method: 'size' };
}

/** An incremental digest producing the same text form S3 uses for that method. */
export type Digest = ChecksumHasher;

/** A digest for a whole-object method; undefined for methods that hash nothing (size, none) or per part. */
export async function createDigest(method: VerificationMethod): Promise<Digest | undefined> {
  if (method === 'md5') {
    const hash = createHash('md5');
    return { update: (chunk) => void hash.update(chunk), result: () => hash.digest('hex') };
  }
  return checksumOfMethod(method)?.digest();
}

/** S3's multipart ETag: MD5 of the concatenated binary MD5s of the parts, then "-" and the part count. */
export function multipartEtag(partMd5s: readonly Buffer[]): string {
  const h = createHash('md5');
  for (const p of partMd5s) h.update(p);
  return `${h.digest('hex')}-${partMd5s.length}`;
}

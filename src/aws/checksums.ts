import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { createCRC32, createCRC64, createXXHash128, createXXHash3, createXXHash64, type IHasher } from 'hash-wasm';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * S3's full-object checksums, every one the SDK models, in one table: the response header a GET
 * carries, the field of the SDK's HeadObject answer, the digest, and the name the manifest records
 * ("verified by ..."). HEAD parsing, GET parsing, the choice of check and the check itself all read
 * this table and nothing else.
 *
 * Digests come from Node (OpenSSL, zlib's CRC32 at 2,800 MB/s) where it has them and from
 * hash-wasm for the rest: CRC32C at 1,620 MB/s and CRC64NVME at 1,250 MB/s, against 330 MB/s for
 * the SDK's own JavaScript implementations (256 MiB on one core of the benchmark machine), so a
 * check never slows a download down. S3 sends every value as base64 of the big-endian digest.
 */
export interface ChecksumSpec {
  /** As S3 names it in lower case: the header is `x-amz-checksum-<algorithm>`. */
  readonly algorithm: ChecksumAlgorithm;
  readonly header: string;
  readonly sdkField: keyof HeadObjectCommandOutput;
  /** Recorded in the manifest as the verification method. */
  readonly method: ChecksumMethod;
  readonly digest: () => Promise<ChecksumHasher>;
}

export const CHECKSUM_ALGORITHMS = [
  'crc32',
  'xxhash3',
  'xxhash64',
  'xxhash128',
  'crc32c',
  'crc64nvme',
  'md5',
  'sha1',
  'sha256',
  'sha512',
] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];
/** An MD5 checksum is recorded apart from the ETag's MD5 ('md5'), which is hex and says something else. */
export type ChecksumMethod = Exclude<ChecksumAlgorithm, 'md5'> | 'checksum-md5';

/** An incremental digest producing S3's text form (base64). */
export interface ChecksumHasher {
  update(chunk: Uint8Array): void;
  result(): string;
}

const CRC32C_POLYNOMIAL = 0x82f63b78;
/** CRC64/NVME, reflected: the polynomial S3's CRC64NVME uses. */
const CRC64NVME_POLYNOMIAL = '9a6c9329ac4bc9b5';

const wasm = (make: () => Promise<IHasher>) => async (): Promise<ChecksumHasher> => {
  const hasher = (await make()).init();
  return {
    update: (chunk) => void hasher.update(chunk),
    result: () => Buffer.from(hasher.digest('binary')).toString('base64'),
  };
};

const node = (algorithm: 'md5' | 'sha1' | 'sha256' | 'sha512') => (): Promise<ChecksumHasher> => {
  const hash = createHash(algorithm);
  return Promise.resolve({ update: (chunk) => void hash.update(chunk), result: () => hash.digest('base64') });
};

const DIGESTS: Record<ChecksumAlgorithm, () => Promise<ChecksumHasher>> = {
  xxhash3: wasm(() => createXXHash3()),
  xxhash64: wasm(() => createXXHash64()),
  xxhash128: wasm(() => createXXHash128()),
  crc32: (): Promise<ChecksumHasher> => {
    let value = 0;
    return Promise.resolve({
      update: (chunk) => void (value = crc32(chunk, value)),
      result: () => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(value >>> 0);
        return out.toString('base64');
      },
    });
  },
  crc32c: wasm(() => createCRC32(CRC32C_POLYNOMIAL)),
  crc64nvme: wasm(() => createCRC64(CRC64NVME_POLYNOMIAL)),
  md5: node('md5'),
  sha1: node('sha1'),
  sha256: node('sha256'),
  sha512: node('sha512'),
};

const SDK_FIELDS: Record<ChecksumAlgorithm, keyof HeadObjectCommandOutput> = {
  xxhash3: 'ChecksumXXHASH3',
  xxhash64: 'ChecksumXXHASH64',
  xxhash128: 'ChecksumXXHASH128',
  crc32: 'ChecksumCRC32',
  crc32c: 'ChecksumCRC32C',
  crc64nvme: 'ChecksumCRC64NVME',
  md5: 'ChecksumMD5',
  sha1: 'ChecksumSHA1',
  sha256: 'ChecksumSHA256',
  sha512: 'ChecksumSHA512',
};

/** In order of preference: the fastest to compute first, for an object that carries several. */
export const S3_CHECKSUMS: readonly ChecksumSpec[] = CHECKSUM_ALGORITHMS.map((algorithm) => ({
  algorithm,
  header: `x-amz-checksum-${algorithm}`,
  sdkField: SDK_FIELDS[algorithm],
  method: algorithm === 'md5' ? 'checksum-md5' : algorithm,
  digest: DIGESTS[algorithm],
}));

const BY_METHOD = new Map<string, ChecksumSpec>(S3_CHECKSUMS.map((spec) => [spec.method, spec]));

/** The table row of a recorded verification method; undefined for methods that are not S3 checksums. */
export function checksumOfMethod(method: string): ChecksumSpec | undefined {
  return BY_METHOD.get(method);
}

/**
 * The full-object checksums of an answer, read through `value` (a header or an SDK field): a
 * composite checksum (a checksum of part checksums, `...-N`, or `x-amz-checksum-type: COMPOSITE`)
 * says nothing a whole-body digest can check, so it is left out.
 */
export function fullObjectChecksums(
  value: (spec: ChecksumSpec) => string | undefined,
  composite: boolean,
): Partial<Record<ChecksumAlgorithm, string>> {
  const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
  if (composite) return checksums;
  for (const spec of S3_CHECKSUMS) {
    const v = value(spec);
    if (v && !v.includes('-')) checksums[spec.algorithm] = v;
  }
  return checksums;
}

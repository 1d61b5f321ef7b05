/**
 * Which way listings and object bodies take, decided once at start. The signed GETs (sigv4.ts,
 * http-get.ts, list-parser.ts) model S3 in the `aws` partition and S3-compatible endpoints; what
 * they do not model goes through the AWS SDK, which resolves its endpoints and signing itself, at
 * about 1.5 ms of CPU more a GetObject and 20 us more a listed key.
 */
export type DataPathSetting = 'auto' | 'fast' | 'sdk';

export interface DataPath {
  kind: 'fast' | 'sdk';
  reason: string;
}

export interface DataPathInput {
  setting: DataPathSetting;
  bucket: string;
  region: string;
  /** An endpoint URL given by configuration: then the signed GETs address it as it is. */
  endpoint?: string;
  fips: boolean;
  dualStack: boolean;
}

/**
 * S3 Express One Zone: a directory bucket `name--azid--x-s3`, or an access point to one
 * `name--azid--xa-s3`; signed with session credentials from CreateSession.
 */
export function isDirectoryBucket(bucket: string): boolean {
  return bucket.endsWith('--x-s3') || bucket.endsWith('--xa-s3');
}

/**
 * An access point's ARN, taken by S3 in place of a bucket name: a regional access point
 * (`arn:aws:s3:<region>:<account>:accesspoint/<name>`), a Multi-Region one (no region, an `.mrap`
 * alias, signed with SigV4A), an Outposts one or an Object Lambda one. The SDK derives the host and
 * the signing name and region from it; the signed GETs model none of that.
 */
const ACCESS_POINT_ARN =
  /^arn:aws[a-z-]*:(s3|s3-object-lambda):[a-z0-9-]*:\d{12}:accesspoint\/[a-z0-9][a-z0-9.-]{1,62}$|^arn:aws[a-z-]*:s3-outposts:[a-z0-9-]+:\d{12}:outpost\/op-[a-f0-9]{17}\/accesspoint\/[a-z0-9][a-z0-9-]{1,62}$/;

export function isAccessPointArn(bucket: string): boolean {
  return ACCESS_POINT_ARN.test(bucket);
}

/** An access point by ARN or by alias (`name-…-s3alias`, Outposts `…--op-s3`), which S3 takes as a bucket name. */
export function isAccessPoint(bucket: string): boolean {
  return isAccessPointArn(bucket) || /-s3alias$|--op-s3$/.test(bucket);
}

/**
 * Whether ListObjectsV2 returns keys in UTF-8 byte order, as it does for general purpose buckets
 * (and every S3-compatible store that follows the API); directory buckets list in no order.
 */
export function listsInKeyOrder(bucket: string): boolean {
  return !isDirectoryBucket(bucket);
}

/** The `aws` partition's region names (amazonaws.com); cn-, us-gov-, us-iso-... are other partitions. */
const AWS_PARTITION_REGION = /^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+$/;

export function chooseDataPath(input: DataPathInput): DataPath {
  const { setting, bucket, region, endpoint } = input;
  if (setting === 'sdk') return { kind: 'sdk', reason: 'S3_DATA_PATH=sdk' };
  const needsSdk = isAccessPointArn(bucket)
    ? 'an access point ARN: the SDK derives its endpoint and signing from it'
    : isDirectoryBucket(bucket)
      ? 'a directory bucket (S3 Express One Zone) needs CreateSession credentials'
      : endpoint
        ? undefined
        : input.fips
          ? 'AWS_USE_FIPS_ENDPOINT: the SDK resolves FIPS endpoints'
          : input.dualStack
            ? 'AWS_USE_DUALSTACK_ENDPOINT: the SDK resolves dual-stack endpoints'
            : AWS_PARTITION_REGION.test(region)
              ? undefined
              : `region ${region} is outside the aws partition (amazonaws.com)`;
  if (!needsSdk) {
    return {
      kind: 'fast',
      reason: setting === 'fast' ? 'S3_DATA_PATH=fast' : endpoint ? `the endpoint ${endpoint}` : `amazonaws.com in ${region}`,
    };
  }
  if (setting === 'fast') throw new Error(`S3_DATA_PATH=fast cannot serve this bucket: ${needsSdk}`);
  return { kind: 'sdk', reason: needsSdk };
}

/**
 * S3's CRC checksums that Node does not provide natively (CRC32 comes from node:zlib), from the
 * AWS SDK's own implementations: the only place outside the S3 client that uses @aws-sdk code.
 */
export { Crc32c, Crc64Nvme } from '@aws-sdk/checksums/crc';

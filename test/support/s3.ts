import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';

/** Test-side S3 access (the app's own S3 code lives in src/aws). */
export function emulatorEndpoint(): string {
  const endpoint = process.env.TEST_S3_ENDPOINT;
  if (!endpoint) throw new Error('TEST_S3_ENDPOINT is not set: run e2e specs through jest (globalSetup starts the emulator)');
  return endpoint;
}

export function testS3(): S3Client {
  return new S3Client({
    endpoint: emulatorEndpoint(),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

export async function newBucket(s3: S3Client): Promise<string> {
  const name = `t-${randomBytes(6).toString('hex')}`;
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

export async function put(s3: S3Client, bucket: string, key: string, body: string | Buffer): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function remove(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** Uploads in parts of `partSize` bytes, so the object gets a multipart ETag ("<md5>-N"). */
export async function putMultipart(s3: S3Client, bucket: string, key: string, body: Buffer, partSize: number): Promise<void> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts: Array<{ ETag?: string; PartNumber: number }> = [];
  for (let i = 0, n = 1; i < body.length; i += partSize, n++) {
    const out = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n, Body: body.subarray(i, i + partSize) }),
    );
    parts.push({ ETag: out.ETag, PartNumber: n });
  }
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
}

/** Deterministic content for a key, so tests can compare bytes without fixtures. */
export function contentFor(key: string, size = 64): Buffer {
  const seed = Buffer.from(`${key}\n`);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = seed[i % seed.length];
  return out;
}

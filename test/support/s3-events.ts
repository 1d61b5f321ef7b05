/**
 * Factories for S3 change notifications, built the way S3 sends them (fauxqs emits none): keys
 * form-encoded, sequencers as hex strings. Used by unit and e2e specs and by the benchmark.
 */
import { signWebhook } from '../../src/auth/webhook-signature';
import { encodeS3EventKey } from '../../src/sync/s3-event';
import type { TestApp } from './app';

export interface EventSpec {
  bucket: string;
  key: string;
  op: 'put' | 'delete';
  /** null: the record carries none, as some S3-compatible stores send it. */
  etag?: string | null;
  size?: number | null;
  sequencer?: string;
  eventName?: string;
  versionId?: string;
}

export function s3Record(e: EventSpec): Record<string, unknown> {
  const object: Record<string, unknown> = { key: encodeS3EventKey(e.key) };
  if (e.op === 'put' && e.size !== null) object.size = e.size ?? 0;
  if (e.op === 'put' && e.etag !== null) object.eTag = e.etag ?? 'd41d8cd98f00b204e9800998ecf8427e';
  if (e.sequencer) object.sequencer = e.sequencer;
  if (e.versionId) object.versionId = e.versionId;
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: '2026-11-23T10:00:00.000Z',
    eventName: e.eventName ?? (e.op === 'put' ? 'ObjectCreated:Put' : 'ObjectRemoved:Delete'),
    userIdentity: { principalId: 'AIDAEXAMPLE' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': 'C3D13FE58DE4C810', 'x-amz-id-2': 'example' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'mirror',
      bucket: { name: e.bucket, ownerIdentity: { principalId: 'A3NL1KOZZKExample' }, arn: `arn:aws:s3:::${e.bucket}` },
      object,
    },
  };
}

export function notification(...events: EventSpec[]): { Records: Array<Record<string, unknown>> } {
  return { Records: events.map(s3Record) };
}

export function snsEnvelope(message: unknown): Record<string, unknown> {
  return {
    Type: 'Notification',
    MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
    TopicArn: 'arn:aws:sns:us-east-1:123456789012:s3-events',
    Subject: 'Amazon S3 Notification',
    Message: JSON.stringify(message),
    Timestamp: '2026-11-23T10:00:00.000Z',
    SignatureVersion: '1',
  };
}

export function eventBridge(e: EventSpec): Record<string, unknown> {
  const object: Record<string, unknown> = { key: e.key };
  if (e.op === 'put' && e.size !== null) object.size = e.size ?? 0;
  if (e.op === 'put' && e.etag !== null) object.etag = e.etag ?? 'd41d8cd98f00b204e9800998ecf8427e';
  if (e.sequencer) object.sequencer = e.sequencer;
  return {
    version: '0',
    id: '17793124-05d4-b198-2fde-7ededc63b103',
    'detail-type': e.op === 'put' ? 'Object Created' : 'Object Deleted',
    source: 'aws.s3',
    account: '111122223333',
    time: '2026-11-23T10:00:00Z',
    region: 'us-east-1',
    resources: [`arn:aws:s3:::${e.bucket}`],
    detail: { version: '0', bucket: { name: e.bucket }, object, reason: e.op === 'put' ? 'PutObject' : 'DeleteObject' },
  };
}

export const testEvent = (bucket: string): Record<string, unknown> => ({
  Service: 'Amazon S3',
  Event: 's3:TestEvent',
  Time: '2026-11-23T10:00:00.000Z',
  Bucket: bucket,
  RequestId: '5582815E1AEA5ADF',
  HostId: 'example',
});

/** Increasing sequencers, as S3 issues them for successive changes of one key. */
export function sequencers(count: number, start = 0x0055aed6dcd90281e5n): string[] {
  return Array.from({ length: count }, (_, i) => (start + BigInt(i)).toString(16).toUpperCase().padStart(18, '0'));
}

/** POSTs `body` (JSON, or a string as it is) to the webhook of `t`, signed with `secret` at `nowMs`. */
export function signedPost(t: TestApp, secret: string, body: unknown, nowMs = Date.now()) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  return t
    .http()
    .post('/api/v1/s3-notification')
    .set('content-type', 'application/json')
    .set(signWebhook(secret, raw, nowMs))
    .send(raw);
}

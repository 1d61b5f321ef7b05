/**
 * S3 change notifications in every envelope they reach us in, reduced to one shape: a change to
 * one key. Pure: no Nest, no I/O. Three envelopes are understood:
 *  - the S3 event notification (`Records[]`, eventVersion 2.x), also as carried by SQS or SNS
 *    records in a Lambda event;
 *  - an SNS notification (`Type: Notification`) whose `Message` is one of these, as a string;
 *  - an EventBridge event from `aws.s3` ("Object Created" / "Object Deleted" / "Object Restore Completed").
 */

import { BadRequestError, errorMessage } from '../common/errors';
import type { ChangeOp, ObjectChange } from '../common/object-change';

export type { ChangeOp, ObjectChange } from '../common/object-change';

export type RecordResult =
  | { status: 'change'; change: ObjectChange }
  | { status: 'ignored'; reason: string; key?: string }
  | { status: 'rejected'; reason: string; key?: string };

/** The body as a whole is not a notification we understand (HTTP 400 / poison message). */
export class EventShapeError extends BadRequestError {}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Nested envelopes (SNS in SQS in a Lambda event...) are unwrapped at most this deep. */
const MAX_DEPTH = 4;

export function parseNotification(body: unknown): RecordResult[] {
  return parse(body, 0);
}

/** The same for a body as it arrived (webhook bytes, SQS message text): both ingresses parse here. */
export function parseNotificationText(text: string): RecordResult[] {
  if (text.length === 0) throw new EventShapeError('the body must be an S3 event notification (JSON)');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new EventShapeError(`the body is not valid JSON: ${errorMessage(err)}`);
  }
  return parse(body, 0);
}

function parse(body: unknown, depth: number): RecordResult[] {
  if (depth > MAX_DEPTH) throw new EventShapeError('envelopes nested too deeply');
  if (!isObject(body)) throw new EventShapeError('the body must be a JSON object');
  if (body.Event === 's3:TestEvent') return [{ status: 'ignored', reason: 's3:TestEvent (sent when notifications are configured)' }];
  if (body.Type === 'Notification') return parse(parseEmbedded(body.Message, 'SNS Message'), depth + 1);
  if (body.Type === 'SubscriptionConfirmation' || body.Type === 'UnsubscribeConfirmation') {
    return [{ status: 'ignored', reason: `SNS ${body.Type}: confirm the subscription with its SubscribeURL` }];
  }
  if (body.source === 'aws.s3' && typeof body['detail-type'] === 'string') return [fromEventBridge(body)];
  if (Array.isArray(body.Records)) return body.Records.flatMap((r, i) => fromRecord(r, i, depth));
  throw new EventShapeError(
    'not an S3 event notification: expected "Records" (S3 / SQS / SNS), an SNS "Notification", an EventBridge event from "aws.s3" or an s3:TestEvent',
  );
}

function parseEmbedded(text: unknown, what: string): unknown {
  if (typeof text !== 'string') throw new EventShapeError(`${what} must be a JSON string`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new EventShapeError(`${what} is not valid JSON`);
  }
}

function fromRecord(record: unknown, index: number, depth: number): RecordResult[] {
  if (!isObject(record)) return [{ status: 'rejected', reason: `Records[${index}] is not an object` }];
  // A Lambda event from an SQS or SNS trigger: each record carries a whole notification.
  if (record.eventSource === 'aws:sqs') return nested(() => parse(parseEmbedded(record.body, `Records[${index}].body`), depth + 1), index);
  if (record.EventSource === 'aws:sns' && isObject(record.Sns)) {
    const sns = record.Sns;
    return nested(() => parse(parseEmbedded(sns.Message, `Records[${index}].Sns.Message`), depth + 1), index);
  }
  return [fromS3Record(record, index)];
}

function nested(parseInner: () => RecordResult[], index: number): RecordResult[] {
  try {
    return parseInner();
  } catch (err) {
    if (err instanceof EventShapeError) return [{ status: 'rejected', reason: `Records[${index}]: ${err.message}` }];
    throw err;
  }
}

function fromS3Record(r: Json, index: number): RecordResult {
  const at = `Records[${index}]`;
  const version = typeof r.eventVersion === 'string' ? r.eventVersion : '';
  if (!/^2\.\d+$/.test(version)) return { status: 'rejected', reason: `${at}: eventVersion ${JSON.stringify(r.eventVersion)} is not 2.x` };
  const s3 = isObject(r.s3) ? r.s3 : undefined;
  const bucket = s3 && isObject(s3.bucket) && typeof s3.bucket.name === 'string' ? s3.bucket.name : undefined;
  const object = s3 && isObject(s3.object) ? s3.object : undefined;
  if (!bucket || !object || typeof object.key !== 'string' || object.key === '') {
    return { status: 'rejected', reason: `${at}: s3.bucket.name and s3.object.key are required` };
  }
  let key: string;
  try {
    key = decodeS3EventKey(object.key);
  } catch {
    return { status: 'rejected', reason: `${at}: s3.object.key ${JSON.stringify(object.key)} is not valid URL encoding`, key: object.key };
  }
  const eventName = typeof r.eventName === 'string' ? r.eventName.replace(/^s3:/, '') : '';
  const op = opOfEventName(eventName);
  if (!op) return { status: 'ignored', reason: `${eventName || 'an unnamed event'} does not change the object's content`, key };
  return changed(
    { bucket, key, op, eventName },
    { etag: object.eTag, size: object.size, versionId: object.versionId, sequencer: object.sequencer, eventTime: r.eventTime },
  );
}

function fromEventBridge(e: Json): RecordResult {
  const detailType = e['detail-type'] as string;
  const detail = isObject(e.detail) ? e.detail : undefined;
  const bucket = detail && isObject(detail.bucket) && typeof detail.bucket.name === 'string' ? detail.bucket.name : undefined;
  const object = detail && isObject(detail.object) ? detail.object : undefined;
  if (!bucket || !object || typeof object.key !== 'string' || object.key === '') {
    return { status: 'rejected', reason: 'EventBridge event: detail.bucket.name and detail.object.key are required' };
  }
  // EventBridge carries the key as it is, not form-encoded like notifications.
  const key = object.key;
  const op: ChangeOp | undefined =
    detailType === 'Object Created' || detailType === 'Object Restore Completed'
      ? 'put'
      : detailType === 'Object Deleted'
        ? 'delete'
        : undefined;
  if (!op) return { status: 'ignored', reason: `${detailType} does not change the object's content`, key };
  return changed(
    { bucket, key, op, eventName: detailType },
    { etag: object.etag, size: object.size, versionId: object['version-id'], sequencer: object.sequencer, eventTime: e.time },
  );
}

/** A change from the fields every envelope has, and the optional ones as found (kept only when well-formed). */
function changed(
  base: Pick<ObjectChange, 'bucket' | 'key' | 'op' | 'eventName'>,
  raw: { etag: unknown; size: unknown; versionId: unknown; sequencer: unknown; eventTime: unknown },
): RecordResult {
  if (raw.sequencer !== undefined && raw.sequencer !== '' && optionalSequencer(raw.sequencer) === undefined) {
    return { status: 'rejected', reason: `sequencer must be hex of at most ${MAX_SEQUENCER_DIGITS} digits`, key: base.key };
  }
  return {
    status: 'change',
    change: {
      ...base,
      etag: optionalString(raw.etag),
      size: optionalSize(raw.size),
      versionId: optionalString(raw.versionId),
      sequencer: optionalSequencer(raw.sequencer),
      eventTime: optionalString(raw.eventTime),
    },
  };
}

function opOfEventName(name: string): ChangeOp | undefined {
  if (name.startsWith('ObjectCreated:')) return 'put';
  // A restored copy of an archived object can be read now: fetched like a new version.
  if (name === 'ObjectRestore:Completed') return 'put';
  if (name.startsWith('ObjectRemoved:')) return 'delete';
  // Expiration removes the object (or hides it behind a delete marker) just like a DELETE.
  if (name === 'LifecycleExpiration:Delete' || name === 'LifecycleExpiration:DeleteMarkerCreated') return 'delete';
  return undefined;
}

const optionalString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const optionalSize = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
/** S3's sequencers are 16 to 18 hex digits today; a longer one would outrank every real event of its key forever. */
const MAX_SEQUENCER_DIGITS = 32;
const SEQUENCER = new RegExp(`^[0-9a-fA-F]{1,${MAX_SEQUENCER_DIGITS}}$`);
const optionalSequencer = (v: unknown): string | undefined => (typeof v === 'string' && SEQUENCER.test(v) ? v : undefined);

/**
 * Keys in S3 notifications are form-encoded (`application/x-www-form-urlencoded`): a space is `+`,
 * a literal `+` is `%2B`. Throws URIError on a malformed escape.
 */
export function decodeS3EventKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

/** The inverse, as S3 produces it (test factories and the Lambda's tests use it). */
export function encodeS3EventKey(key: string): string {
  return encodeURIComponent(key)
    .replace(/%20/g, '+')
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, '/');
}

/**
 * Orders two sequencers of one key as S3 documents it: hex strings of possibly different lengths,
 * the shorter left-padded with zeros, then compared lexicographically. Negative when a < b.
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const x = a.toUpperCase().padStart(width, '0');
  const y = b.toUpperCase().padStart(width, '0');
  return x < y ? -1 : x > y ? 1 : 0;
}

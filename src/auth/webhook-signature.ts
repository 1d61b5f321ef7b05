/**
 * The webhook's request signature, shared by the service (verify) and the Lambda forwarder (sign):
 * HMAC-SHA256 over `v1:<unix seconds>:<raw body>` with WEBHOOK_SECRET, hex-encoded. The timestamp
 * is signed with the body, so a captured request cannot be replayed outside the tolerance window.
 * Pure: node:crypto only, so that the Lambda bundle stays free of Nest.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The route the signed notifications are posted to (the service's controller, the Lambda's target). */
export const WEBHOOK_PATH = '/api/v1/s3-notification';
export const SIGNATURE_HEADER = 'x-s3sync-signature';
export const TIMESTAMP_HEADER = 'x-s3sync-timestamp';
const VERSION = 'v1';
export const SIGNATURE_MISMATCH = 'signature does not match the body';

export function computeSignature(secret: string, timestampSeconds: number, body: Buffer | string): string {
  return createHmac('sha256', secret).update(`${VERSION}:${timestampSeconds}:`).update(body).digest('hex');
}

/** The headers a signed request carries. */
export function signWebhook(secret: string, body: Buffer | string, nowMs: number): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: `${VERSION}=${computeSignature(secret, timestamp, body)}` };
}

/** `signature`: the hex of the signature that matched, what identifies the request for replay protection. */
/**
 * What can be checked of a signed request before its body is read: both headers present, the
 * timestamp within the window. Run ahead of the body parser, so that an unsigned or stale request
 * costs no body buffering at all.
 */
export function checkWebhookHeaders(
  headers: { signature?: string; timestamp?: string },
  nowMs: number,
  toleranceSeconds: number,
): { ok: true; signature: string; timestamp: number } | { ok: false; reason: string } {
  if (!headers.signature || !headers.timestamp) {
    return { ok: false, reason: `missing ${SIGNATURE_HEADER} or ${TIMESTAMP_HEADER} header` };
  }
  if (!/^\d{1,12}$/.test(headers.timestamp)) return { ok: false, reason: `${TIMESTAMP_HEADER} must be Unix seconds` };
  const timestamp = Number(headers.timestamp);
  if (Math.abs(nowMs / 1000 - timestamp) > toleranceSeconds) {
    return { ok: false, reason: `${TIMESTAMP_HEADER} is outside the ${toleranceSeconds} s window (check the sender's clock)` };
  }
  return { ok: true, signature: headers.signature, timestamp };
}

export type SignatureCheck = { ok: true; signature: string; timestamp: number } | { ok: false; reason: string };

/**
 * Checks a request's signature headers against its raw body, with any of `secrets` (the current and,
 * during a rotation, the previous one). Several `v1=` values may be given, comma-separated, so that a
 * sender can sign with an old and a new secret while they rotate.
 */
export function verifyWebhook(
  secrets: readonly string[],
  headers: { signature?: string; timestamp?: string },
  body: Buffer,
  nowMs: number,
  toleranceSeconds: number,
): SignatureCheck {
  const framed = checkWebhookHeaders(headers, nowMs, toleranceSeconds);
  if (!framed.ok) return framed;
  const { timestamp } = framed;
  const given = framed.signature
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith(`${VERSION}=`))
    .map((part) => Buffer.from(part.slice(VERSION.length + 1), 'hex'));
  for (const secret of secrets) {
    const expected = Buffer.from(computeSignature(secret, timestamp, body), 'hex');
    if (given.some((sig) => sig.length === expected.length && timingSafeEqual(sig, expected))) {
      return { ok: true, signature: expected.toString('hex'), timestamp };
    }
  }
  return { ok: false, reason: SIGNATURE_MISMATCH };
}

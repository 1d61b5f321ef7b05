/**
 * When a bundle is sealed, and with which files (pure; see bundle-policy.spec.ts). Files wait in
 * the order they were committed; a bundle takes them from the oldest, up to BUNDLE_MAX_FILES and
 * BUNDLE_MAX_MB (a single file larger than the byte limit travels alone), and is sealed as soon as
 * it is full or its oldest file has waited BUNDLE_MAX_AGE_SECONDS.
 */
import type { BundleMember } from '../state/state.ports';

export interface BundleLimits {
  maxFiles: number;
  maxBytes: number;
  maxAgeMs: number;
}

export type SealDecision = { seal: false } | { seal: true; members: BundleMember[]; bytes: number; reason: 'size' | 'age' };

/** `waiting`: files not yet in a bundle, oldest first. */
export function sealingDecision(waiting: readonly BundleMember[], limits: BundleLimits, nowMs: number): SealDecision {
  if (waiting.length === 0) return { seal: false };
  const members: BundleMember[] = [];
  let bytes = 0;
  for (const m of waiting) {
    if (members.length >= limits.maxFiles || (members.length > 0 && bytes + m.size > limits.maxBytes)) break;
    members.push(m);
    bytes += m.size;
  }
  const full = members.length < waiting.length || members.length >= limits.maxFiles || bytes >= limits.maxBytes;
  if (full) return { seal: true, members, bytes, reason: 'size' };
  if (nowMs - waiting[0].addedAt.getTime() >= limits.maxAgeMs) return { seal: true, members, bytes, reason: 'age' };
  return { seal: false };
}

/** How long a bundle whose post failed waits before the next attempt: doubling from RETRY_BASE_MS, capped at RETRY_MAX_MS. */
export function retryDelayMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempts, 16));
}

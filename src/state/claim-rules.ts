/**
 * The rules of idempotency claims and leases, once for every backend (as Powertools'
 * BasePersistenceLayer keeps expiry and ownership out of its DynamoDB layer): a backend only reads
 * a record and writes one conditionally on the version it read; what may be granted is decided here.
 */
import { ClaimResult, IdempotencyClaims, LeaseStore } from './state.ports';

export interface ClaimRecord {
  status: 'IN_PROGRESS' | 'COMPLETED';
  owner: string;
  expiresAt: number;
  /** Bumped on every write; a write is conditional on the version read before it. */
  version: number;
}

/**
 * Granted when there is no claim, when it expired, when `owner` holds it in progress, or when
 * forced; an unexpired COMPLETED claim answers 'completed', another owner's unexpired one 'held'.
 */
export function claimDecision(existing: ClaimRecord | undefined, owner: string, nowMs: number, force: boolean): ClaimResult {
  if (!existing || force || existing.expiresAt <= nowMs) return 'claimed';
  if (existing.status === 'COMPLETED') return 'completed';
  return existing.owner === owner ? 'claimed' : 'held';
}

export interface LeaseRecord {
  owner: string;
  expiresAt: number;
  version: number;
}

/** A lease is granted when nobody holds it, when its holder asks again, or once it has expired. */
export function leaseGranted(existing: LeaseRecord | undefined, owner: string, nowMs: number): boolean {
  return !existing || existing.owner === owner || existing.expiresAt <= nowMs;
}

/**
 * IdempotencyClaims and LeaseStore on top of backend hooks: read a record, write one if its version
 * is unchanged. A backend extends this and implements the hooks, completeClaim, releaseClaim and
 * releaseLease (each a write conditional on the owner).
 */
export abstract class ConditionalOwnership extends IdempotencyClaims implements LeaseStore {
  protected abstract readClaim(id: string): Promise<ClaimRecord | undefined>;
  /** Writes `next` only if the stored claim still has `expectedVersion` (0: there is none); false when another writer came first. */
  protected abstract writeClaimIf(id: string, next: ClaimRecord, expectedVersion: number): Promise<boolean>;

  async claim(id: string, owner: string, nowMs: number, leaseMs: number, force: boolean): Promise<ClaimResult> {
    for (;;) {
      const existing = await this.readClaim(id);
      const decision = claimDecision(existing, owner, nowMs, force);
      if (decision !== 'claimed') return decision;
      const version = existing?.version ?? 0;
      const next: ClaimRecord = { status: 'IN_PROGRESS', owner, expiresAt: nowMs + leaseMs, version: version + 1 };
      if (await this.writeClaimIf(id, next, version)) return 'claimed';
      // Another replica wrote between the read and the write: decide again on what it wrote.
    }
  }

  protected abstract readLease(name: string): Promise<LeaseRecord | undefined>;
  /** Writes `next` only if the stored lease still has `expectedVersion` (0: there is none). */
  protected abstract writeLeaseIf(name: string, next: LeaseRecord, expectedVersion: number): Promise<boolean>;
  abstract releaseLease(name: string, owner: string): Promise<void>;

  async acquireLease(name: string, owner: string, nowMs: number, leaseMs: number): Promise<boolean> {
    for (;;) {
      const existing = await this.readLease(name);
      if (!leaseGranted(existing, owner, nowMs)) return false;
      const version = existing?.version ?? 0;
      if (await this.writeLeaseIf(name, { owner, expiresAt: nowMs + leaseMs, version: version + 1 }, version)) return true;
    }
  }
}

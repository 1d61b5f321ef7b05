import { Injectable, OnModuleInit } from '@nestjs/common';
import { DynamoRepository, Item, TableSpec } from '../../aws/dynamodb.repository';
import { Clock } from '../../common/clock';
import { AppConfig } from '../../config/app-config';
import { ClaimRecord, ConditionalOwnership, LeaseRecord } from '../claim-rules';
import {
  BreakerState,
  BreakerStore,
  BundleCounts,
  BundleMember,
  BundleRecord,
  BundleStatus,
  BundleStore,
  DeadLetter,
  DeadLetterStore,
  DeliveryLedger,
  IdempotencyClaims,
  LeaseStore,
  LedgerEntry,
  LedgerStatus,
} from '../state.ports';

const LEDGER_STATUSES: readonly LedgerStatus[] = ['pending', 'synced', 'delivering', 'delivered', 'failed', 'dead'];
const BUNDLE_STATUSES: readonly BundleStatus[] = ['sealed', 'archived', 'posted', 'failed'];
/** Members not yet in a bundle share this index partition. */
const UNASSIGNED = '-';

/** Sortable as text: epoch milliseconds padded to a fixed width. */
const sortable = (ms: number): string => String(ms).padStart(15, '0');

/**
 * The shared state on DynamoDB, for replicas (STATE_BACKEND=dynamodb). Three tables, named as the
 * seeds name them:
 * - IDEMPOTENCY_TABLE_NAME: one item per file version's claim (`id`);
 * - CIRCUIT_BREAKER_TABLE_NAME: one item per breaker (`name`), written by compare-and-set on `version`;
 * - STATUS_TABLE_NAME: ledger entries (`L#fileId`), bundle members (`M#fileId`), bundles (`B#id`)
 *   leases (`LEASE#name`) and dead letters (`DL#id`), with two indexes: gsi1 by status (ledger,
 *   bundles), by bundle (members) or by time (dead letters), gsi2 by key (ledger) or pending batch
 *   (dead letters).
 * Every ownership decision is a conditional write. Items carry the TTL attribute (epoch seconds);
 * DynamoDB deletes them up to days late, and emulators never do, so a read treats an item past its
 * TTL as absent.
 */
@Injectable()
export class DynamoStateStore
  extends ConditionalOwnership
  implements OnModuleInit, DeliveryLedger, IdempotencyClaims, BundleStore, BreakerStore, LeaseStore, DeadLetterStore
{
  private readonly tables: { claims: string; breakers: string; status: string };
  private readonly ttl: string;

  constructor(
    private readonly config: AppConfig,
    private readonly dynamo: DynamoRepository,
    private readonly clock: Clock,
  ) {
    super();
    const { idempotencyTable, breakerTable, statusTable, ttlAttribute } = config.state.dynamodb;
    this.tables = { claims: idempotencyTable, breakers: breakerTable, status: statusTable };
    this.ttl = ttlAttribute;
  }

  static tableSpecs(config: AppConfig): TableSpec[] {
    const { idempotencyTable, breakerTable, statusTable, ttlAttribute } = config.state.dynamodb;
    return [
      { name: idempotencyTable, hashKey: 'id', ttlAttribute },
      { name: breakerTable, hashKey: 'name' },
      {
        name: statusTable,
        hashKey: 'pk',
        ttlAttribute,
        indexes: [
          { name: 'gsi1', hashKey: 'gsi1pk', rangeKey: 'gsi1sk' },
          { name: 'gsi2', hashKey: 'gsi2pk', rangeKey: 'gsi2sk' },
        ],
      },
    ];
  }

  /** A missing table stops the start with its name (MissingTableError), unless DYNAMODB_CREATE_TABLES. */
  async onModuleInit(): Promise<void> {
    await this.dynamo.ensureTables(DynamoStateStore.tableSpecs(this.config), this.config.state.dynamodb.createTables);
  }

  async ping(): Promise<void> {
    await this.dynamo.ping(this.tables.status);
  }

  private expired(item: Item | undefined): boolean {
    const ttl = item?.[this.ttl];
    return typeof ttl === 'number' && ttl * 1000 <= this.clock.nowMs();
  }

  private live(item: Item | undefined): Item | undefined {
    return item && !this.expired(item) ? item : undefined;
  }

  // --- ledger -------------------------------------------------------------------------------

  async ledgerGet(fileId: string): Promise<LedgerEntry | undefined> {
    const item = this.live(await this.dynamo.get(this.tables.status, { pk: `L#${fileId}` }));
    return item && toLedger(item);
  }

  async ledgerLatestForKey(key: string): Promise<LedgerEntry | undefined> {
    const items = await this.dynamo.query(this.tables.status, {
      index: 'gsi2',
      keyCondition: 'gsi2pk = :k',
      values: { ':k': `LK#${key}` },
      newestFirst: true,
    });
    const item = items.find((i) => !this.expired(i));
    return item && toLedger(item);
  }

  async ledgerPut(e: LedgerEntry): Promise<void> {
    const updated = e.updatedAt.getTime();
    await this.dynamo.put(this.tables.status, {
      pk: `L#${e.fileId}`,
      gsi1pk: `LS#${e.status}`,
      gsi1sk: `${sortable(updated)}#${e.fileId}`,
      gsi2pk: `LK#${e.key}`,
      gsi2sk: `${sortable(updated)}#${e.fileId}`,
      fileId: e.fileId,
      key: e.key,
      status: e.status,
      recordsParsed: e.recordsParsed,
      recordsSent: e.recordsSent,
      recordsFailed: e.recordsFailed,
      batchesAcked: e.batchesAcked,
      attempts: e.attempts,
      lastError: e.lastError,
      createdAt: e.createdAt.getTime(),
      updatedAt: updated,
      deliveredAt: e.deliveredAt?.getTime(),
      [this.ttl]: Math.ceil((updated + this.config.state.statusTtlMs) / 1000),
    });
  }

  async ledgerByStatus(statuses: readonly LedgerStatus[], limit: number): Promise<LedgerEntry[]> {
    const pages = await Promise.all(
      statuses.map((s) =>
        this.dynamo.query(this.tables.status, { index: 'gsi1', keyCondition: 'gsi1pk = :s', values: { ':s': `LS#${s}` }, limit }),
      ),
    );
    return pages
      .flat()
      .filter((i) => !this.expired(i))
      .sort((a, b) => String(a.gsi1sk).localeCompare(String(b.gsi1sk)))
      .slice(0, limit)
      .map(toLedger);
  }

  async ledgerCounts(): Promise<Partial<Record<LedgerStatus, number>>> {
    const counts = await Promise.all(
      LEDGER_STATUSES.map((s) =>
        this.dynamo.count(this.tables.status, { index: 'gsi1', keyCondition: 'gsi1pk = :s', values: { ':s': `LS#${s}` } }),
      ),
    );
    return Object.fromEntries(LEDGER_STATUSES.map((s, i) => [s, counts[i]]).filter(([, n]) => Number(n) > 0));
  }

  // --- idempotency claims -------------------------------------------------------------------

  protected async readClaim(id: string): Promise<ClaimRecord | undefined> {
    const item = await this.dynamo.get(this.tables.claims, { id });
    return (
      item && {
        status: item.status as ClaimRecord['status'],
        owner: String(item.owner),
        expiresAt: Number(item.expiresAt),
        version: Number(item.version),
      }
    );
  }

  protected writeClaimIf(id: string, next: ClaimRecord, expectedVersion: number): Promise<boolean> {
    return this.dynamo.put(
      this.tables.claims,
      { id, ...next, [this.ttl]: Math.ceil(next.expiresAt / 1000) },
      expectedVersion === 0
        ? { expression: 'attribute_not_exists(id)' }
        : { expression: 'version = :expected', values: { ':expected': expectedVersion } },
    );
  }

  async completeClaim(id: string, owner: string, expiresAtMs: number): Promise<boolean> {
    const written = await this.dynamo.update(
      this.tables.claims,
      { id },
      {
        expression: 'SET #status = :completed, expiresAt = :expires, #ttl = :ttl ADD version :one',
        names: { '#status': 'status', '#ttl': this.ttl },
        values: { ':completed': 'COMPLETED', ':expires': expiresAtMs, ':ttl': Math.ceil(expiresAtMs / 1000), ':one': 1 },
      },
      { expression: '#owner = :owner', names: { '#owner': 'owner' }, values: { ':owner': owner } },
    );
    return written !== false;
  }

  async releaseClaim(id: string, owner: string): Promise<void> {
    await this.dynamo.delete(
      this.tables.claims,
      { id },
      {
        expression: '#owner = :owner AND #status = :inProgress',
        names: { '#owner': 'owner', '#status': 'status' },
        values: { ':owner': owner, ':inProgress': 'IN_PROGRESS' },
      },
    );
  }

  // --- breakers -----------------------------------------------------------------------------

  async breakerGet(name: string): Promise<BreakerState | undefined> {
    const item = await this.dynamo.get(this.tables.breakers, { name });
    return (
      item && {
        name,
        state: item.state as BreakerState['state'],
        failures: Number(item.failures),
        openedAt: Number(item.openedAt),
        probeUntil: Number(item.probeUntil),
        version: Number(item.version),
      }
    );
  }

  breakerCompareAndSet(next: BreakerState, expectedVersion: number): Promise<boolean> {
    return this.dynamo.put(
      this.tables.breakers,
      { ...next },
      expectedVersion === 0
        ? { expression: 'attribute_not_exists(#name)', names: { '#name': 'name' } }
        : { expression: 'version = :expected', values: { ':expected': expectedVersion } },
    );
  }

  // --- bundles ------------------------------------------------------------------------------

  bundleAddMember(m: Omit<BundleMember, 'bundleId'>): Promise<boolean> {
    const added = m.addedAt.getTime();
    return this.dynamo.put(
      this.tables.status,
      {
        pk: `M#${m.fileId}`,
        gsi1pk: `MB#${UNASSIGNED}`,
        gsi1sk: `${sortable(added)}#${m.fileId}`,
        fileId: m.fileId,
        key: m.key,
        size: m.size,
        addedAt: added,
      },
      { expression: 'attribute_not_exists(pk)' },
    );
  }

  async bundlePendingMembers(limit: number): Promise<BundleMember[]> {
    return (await this.members(UNASSIGNED, limit)).map(toMember);
  }

  async bundleMembers(bundleId: string): Promise<BundleMember[]> {
    return (await this.members(bundleId)).map(toMember);
  }

  private members(bundleId: string, limit?: number): Promise<Item[]> {
    return this.dynamo.query(this.tables.status, { index: 'gsi1', keyCondition: 'gsi1pk = :b', values: { ':b': `MB#${bundleId}` }, limit });
  }

  /**
   * The bundle is written first, then each member is taken conditionally (no transactions: DynamoDB
   * caps them at 100 items, and emulators lack them). A member another sealer took first is left
   * out; the bundle then records what it really holds, or is deleted when it holds nothing.
   */
  async bundleSeal(bundle: BundleRecord, fileIds: readonly string[]): Promise<number> {
    await this.bundlePut(bundle);
    let files = 0;
    let bytes = 0;
    for (const fileId of fileIds) {
      const taken = await this.dynamo.update(
        this.tables.status,
        { pk: `M#${fileId}` },
        { expression: 'SET bundleId = :id, gsi1pk = :assigned', values: { ':id': bundle.id, ':assigned': `MB#${bundle.id}` } },
        { expression: 'gsi1pk = :unassigned', values: { ':unassigned': `MB#${UNASSIGNED}` } },
      );
      if (taken === false) continue;
      files++;
      bytes += Number(taken.size);
    }
    if (files === 0) await this.dynamo.delete(this.tables.status, { pk: `B#${bundle.id}` });
    else if (files !== fileIds.length) await this.bundlePut({ ...bundle, files, bytes });
    return files;
  }

  async bundlePut(b: BundleRecord): Promise<void> {
    const created = b.createdAt.getTime();
    await this.dynamo.put(this.tables.status, {
      pk: `B#${b.id}`,
      gsi1pk: `BS#${b.status}`,
      gsi1sk: `${sortable(created)}#${b.id}`,
      id: b.id,
      status: b.status,
      files: b.files,
      bytes: b.bytes,
      archiveKey: b.archiveKey,
      archiveBytes: b.archiveBytes,
      attempts: b.attempts,
      lastError: b.lastError,
      createdAt: created,
      updatedAt: b.updatedAt.getTime(),
    });
  }

  async bundlesByStatus(statuses: readonly BundleStatus[], limit: number): Promise<BundleRecord[]> {
    const pages = await Promise.all(
      statuses.map((s) =>
        this.dynamo.query(this.tables.status, { index: 'gsi1', keyCondition: 'gsi1pk = :s', values: { ':s': `BS#${s}` }, limit }),
      ),
    );
    return pages
      .flat()
      .sort((a, b) => String(a.gsi1sk).localeCompare(String(b.gsi1sk)))
      .slice(0, limit)
      .map(toBundle);
  }

  async bundleCounts(): Promise<BundleCounts> {
    const count = (pk: string): Promise<number> =>
      this.dynamo.count(this.tables.status, { index: 'gsi1', keyCondition: 'gsi1pk = :p', values: { ':p': pk } });
    const [waitingFiles, ...perStatus] = await Promise.all([count(`MB#${UNASSIGNED}`), ...BUNDLE_STATUSES.map((s) => count(`BS#${s}`))]);
    return {
      waitingFiles,
      bundles: Object.fromEntries(BUNDLE_STATUSES.map((s, i) => [s, perStatus[i]]).filter(([, n]) => Number(n) > 0)),
    };
  }

  // --- dead letters ------------------------------------------------------------------------

  async deadLetterAdd(l: DeadLetter): Promise<void> {
    const at = `${l.at}#${l.id}`;
    await this.dynamo.put(this.tables.status, {
      ...l,
      pk: `DL#${l.id}`,
      gsi1pk: 'DL',
      gsi1sk: at,
      ...(l.kind === 'batch' && !l.redrivenAt ? { gsi2pk: 'DLP', gsi2sk: at } : {}),
    });
  }

  /** Offset paging reads the index up to the page: cheap for an operator's listing, not for bulk export. */
  async deadLetterList(offset: number, limit: number): Promise<{ total: number; letters: DeadLetter[] }> {
    const [total, items] = await Promise.all([
      this.dynamo.count(this.tables.status, { index: 'gsi1', keyCondition: 'gsi1pk = :p', values: { ':p': 'DL' } }),
      this.dynamo.query(this.tables.status, { index: 'gsi1', keyCondition: 'gsi1pk = :p', values: { ':p': 'DL' }, limit: offset + limit }),
    ]);
    return { total, letters: items.slice(offset).map(toDeadLetter) };
  }

  async deadLetterPendingBatches(limit: number): Promise<DeadLetter[]> {
    const items = await this.dynamo.query(this.tables.status, {
      index: 'gsi2',
      keyCondition: 'gsi2pk = :p',
      values: { ':p': 'DLP' },
      limit,
    });
    return items.map(toDeadLetter);
  }

  async deadLetterMarkRedriven(ids: readonly string[], at: Date): Promise<void> {
    for (const id of ids) {
      await this.dynamo.update(
        this.tables.status,
        { pk: `DL#${id}` },
        { expression: 'SET redrivenAt = :at REMOVE gsi2pk, gsi2sk', values: { ':at': at.toISOString() } },
        { expression: 'attribute_exists(pk)' },
      );
    }
  }

  // --- leases -------------------------------------------------------------------------------

  protected async readLease(name: string): Promise<LeaseRecord | undefined> {
    const item = await this.dynamo.get(this.tables.status, { pk: `LEASE#${name}` });
    return item && { owner: String(item.owner), expiresAt: Number(item.expiresAt), version: Number(item.version) };
  }

  protected writeLeaseIf(name: string, next: LeaseRecord, expectedVersion: number): Promise<boolean> {
    return this.dynamo.put(
      this.tables.status,
      { pk: `LEASE#${name}`, ...next, [this.ttl]: Math.ceil(next.expiresAt / 1000) + 86_400 },
      expectedVersion === 0
        ? { expression: 'attribute_not_exists(pk)' }
        : { expression: 'version = :expected', values: { ':expected': expectedVersion } },
    );
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.dynamo.delete(
      this.tables.status,
      { pk: `LEASE#${name}` },
      { expression: '#owner = :owner', names: { '#owner': 'owner' }, values: { ':owner': owner } },
    );
  }
}

const optionalNumber = (v: unknown): number | undefined => (v === undefined || v === null ? undefined : Number(v));
const optionalString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function toLedger(i: Item): LedgerEntry {
  const deliveredAt = optionalNumber(i.deliveredAt);
  const entry: LedgerEntry = {
    fileId: String(i.fileId),
    key: String(i.key),
    status: i.status as LedgerStatus,
    recordsParsed: Number(i.recordsParsed),
    recordsSent: Number(i.recordsSent),
    recordsFailed: Number(i.recordsFailed),
    batchesAcked: Number(i.batchesAcked),
    attempts: Number(i.attempts),
    createdAt: new Date(Number(i.createdAt)),
    updatedAt: new Date(Number(i.updatedAt)),
  };
  const lastError = optionalString(i.lastError);
  if (lastError !== undefined) entry.lastError = lastError;
  if (deliveredAt !== undefined) entry.deliveredAt = new Date(deliveredAt);
  return entry;
}

function toMember(i: Item): BundleMember {
  const member: BundleMember = { fileId: String(i.fileId), key: String(i.key), size: Number(i.size), addedAt: new Date(Number(i.addedAt)) };
  const bundleId = optionalString(i.bundleId);
  if (bundleId !== undefined) member.bundleId = bundleId;
  return member;
}

function toBundle(i: Item): BundleRecord {
  const bundle: BundleRecord = {
    id: String(i.id),
    status: i.status as BundleStatus,
    files: Number(i.files),
    bytes: Number(i.bytes),
    attempts: Number(i.attempts),
    createdAt: new Date(Number(i.createdAt)),
    updatedAt: new Date(Number(i.updatedAt)),
  };
  const archiveKey = optionalString(i.archiveKey);
  const archiveBytes = optionalNumber(i.archiveBytes);
  const lastError = optionalString(i.lastError);
  if (archiveKey !== undefined) bundle.archiveKey = archiveKey;
  if (archiveBytes !== undefined) bundle.archiveBytes = archiveBytes;
  if (lastError !== undefined) bundle.lastError = lastError;
  return bundle;
}

const DEAD_LETTER_FIELDS = ['line', 'batchNo', 'firstLine', 'lastLine'] as const;

function toDeadLetter(i: Item): DeadLetter {
  const letter: DeadLetter = {
    id: String(i.id),
    at: String(i.at),
    kind: i.kind as DeadLetter['kind'],
    fileId: String(i.fileId),
    key: String(i.key),
    reason: String(i.reason),
    attempts: Number(i.attempts),
    payload: String(i.payload ?? ''),
  };
  for (const f of DEAD_LETTER_FIELDS) {
    const v = optionalNumber(i[f]);
    if (v !== undefined) letter[f] = v;
  }
  const payloadRef = optionalString(i.payloadRef);
  const redrivenAt = optionalString(i.redrivenAt);
  if (payloadRef !== undefined) letter.payloadRef = payloadRef;
  if (redrivenAt !== undefined) letter.redrivenAt = redrivenAt;
  return letter;
}

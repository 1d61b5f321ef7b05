import { randomUUID } from 'node:crypto';
import { startDynalite } from '../../../test/support/dynalite';
import { DynamoRepository, MissingTableError } from '../../aws/dynamodb.repository';
import { AppConfig } from '../../config/app-config';
import { validateEnv } from '../../config/env.schema';
import { describeStateContracts } from '../state.ports.testing';
import { DynamoStateStore } from './dynamodb.state-store';
import { FixedClock } from '../../../test/support/clocks';

/** The contract suites' dates are in November 2026: ledger TTLs are read against this clock. */
const contractClock = new FixedClock(new Date('2026-11-23T12:00:00Z'));

let dynalite: Awaited<ReturnType<typeof startDynalite>>;
beforeAll(async () => {
  // dynalite accepts any signed request; the SDK needs credentials to sign one.
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  dynalite = await startDynalite();
});
afterAll(() => dynalite.stop());

function configFor(overrides: Record<string, string> = {}): AppConfig {
  const suffix = randomUUID().slice(0, 8);
  return new AppConfig(
    validateEnv({
      S3_BUCKET_NAME: 'test-bucket',
      AWS_REGION: 'us-east-1',
      STATE_BACKEND: 'dynamodb',
      DYNAMODB_ENDPOINT: dynalite.endpoint,
      DYNAMODB_CREATE_TABLES: 'true',
      IDEMPOTENCY_TABLE_NAME: `claims-${suffix}`,
      CIRCUIT_BREAKER_TABLE_NAME: `breakers-${suffix}`,
      STATUS_TABLE_NAME: `status-${suffix}`,
      ...overrides,
    }),
  );
}

describeStateContracts('dynamodb (dynalite)', ['ledger', 'claims', 'bundles', 'breakers', 'leases', 'deadLetters'], async () => {
  const config = configFor();
  const repository = new DynamoRepository(config);
  const store = new DynamoStateStore(config, repository, contractClock);
  await store.onModuleInit();
  return {
    ports: { ledger: store, claims: store, bundles: store, breakers: store, leases: store, deadLetters: store },
    close: async () => repository.onApplicationShutdown(),
  };
});

describe('DynamoStateStore start-up', () => {
  it('stops with the name of a missing table unless it may create it', async () => {
    const config = configFor({ DYNAMODB_CREATE_TABLES: 'false' });
    const repository = new DynamoRepository(config);
    const store = new DynamoStateStore(config, repository, contractClock);
    try {
      const failure = store.onModuleInit();
      await expect(failure).rejects.toBeInstanceOf(MissingTableError);
      await expect(failure).rejects.toThrow(config.state.dynamodb.idempotencyTable);
    } finally {
      repository.onApplicationShutdown();
    }
  });

  it('treats a ledger entry past its TTL as absent (DynamoDB deletes expired items late)', async () => {
    const config = configFor({ STATUS_TTL_DAYS: '1' });
    const repository = new DynamoRepository(config);
    const store = new DynamoStateStore(config, repository, contractClock);
    try {
      await store.onModuleInit();
      const entry = {
        fileId: 'b/k@e',
        key: 'k',
        status: 'delivered' as const,
        recordsParsed: 1,
        recordsSent: 1,
        recordsFailed: 0,
        batchesAcked: 1,
        attempts: 1,
        createdAt: new Date('2026-11-20T00:00:00Z'),
        updatedAt: new Date('2026-11-21T00:00:00Z'),
      };
      await store.ledgerPut(entry);
      await expect(store.ledgerGet('b/k@e')).resolves.toBeUndefined();
      await store.ledgerPut({ ...entry, updatedAt: new Date('2026-11-23T00:00:00Z') });
      await expect(store.ledgerGet('b/k@e')).resolves.toMatchObject({ status: 'delivered' });
    } finally {
      repository.onApplicationShutdown();
    }
  });
});

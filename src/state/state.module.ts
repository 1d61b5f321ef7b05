import { Abstract, Module, Provider } from '@nestjs/common';
import { AwsModule } from '../aws/aws.module';
import { DynamoRepository } from '../aws/dynamodb.repository';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { DynamoStateStore } from './dynamodb/dynamodb.state-store';
import { LocalValues, ReplicaIdentity } from './local-values.service';
import { ManifestStore } from './manifest.store';
import { StateSweeper } from './state.sweeper';
import { SqliteDatabase } from './sqlite/sqlite.database';
import { SqliteStateStore } from './sqlite/sqlite.state-store';
import {
  BreakerStore,
  BundleStore,
  DeadLetterStore,
  DeliveryLedger,
  EventInbox,
  IdempotencyClaims,
  LeaseStore,
  RunStore,
} from './state.ports';

/** Shared between replicas when STATE_BACKEND=dynamodb; in SQLite otherwise. */
const SHARED_PORTS: ReadonlyArray<Abstract<unknown>> = [
  DeliveryLedger,
  IdempotencyClaims,
  BundleStore,
  BreakerStore,
  LeaseStore,
  DeadLetterStore,
];

/**
 * The state ports and their backends, chosen here and nowhere else: local state (manifest, this
 * replica's runs and webhook inbox) always in SQLite under STATE_DIR; shared state in SQLite for
 * one process, or in DynamoDB for replicas (STATE_BACKEND=dynamodb). Services inject the ports.
 */
@Module({
  imports: [AwsModule],
  providers: [
    SqliteDatabase,
    ManifestStore,
    LocalValues,
    ReplicaIdentity,
    StateSweeper,
    SqliteStateStore,
    {
      // Built only for the DynamoDB backend: its start checks (or creates) the tables.
      provide: DynamoStateStore,
      inject: [AppConfig, DynamoRepository, Clock],
      useFactory: (config: AppConfig, dynamo: DynamoRepository, clock: Clock) =>
        config.state.backend === 'dynamodb' ? new DynamoStateStore(config, dynamo, clock) : null,
    },
    { provide: RunStore, useExisting: SqliteStateStore },
    { provide: EventInbox, useExisting: SqliteStateStore },
    ...SHARED_PORTS.map((port): Provider => ({
      provide: port,
      inject: [SqliteStateStore, DynamoStateStore],
      useFactory: (sqlite: SqliteStateStore, dynamo: DynamoStateStore | null) => dynamo ?? sqlite,
    })),
  ],
  exports: [ManifestStore, LocalValues, ReplicaIdentity, RunStore, EventInbox, ...SHARED_PORTS],
})
export class StateModule {}

import { Module } from '@nestjs/common';
import { ManifestStore } from './manifest.store';
import { SqliteDatabase } from './sqlite/sqlite.database';
import { SqliteStateStore } from './sqlite/sqlite-state-store';
import { StateStore } from './state-store';

@Module({
  providers: [SqliteDatabase, ManifestStore, { provide: StateStore, useClass: SqliteStateStore }],
  exports: [ManifestStore, StateStore, SqliteDatabase],
})
export class StateModule {}

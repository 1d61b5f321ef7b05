import { Module } from '@nestjs/common';
import { BreakerModule } from '../breaker/breaker.module';
import { DeliveryModule } from '../delivery/delivery.module';
import { SyncModule } from '../sync/sync.module';
import { ServiceInfoController } from './service-info.controller';
import { StatsController } from './stats.controller';

/** What the service tells a human: its name and version, and the totals of every module (/api/v1/stats). */
@Module({
  imports: [SyncModule, DeliveryModule, BreakerModule],
  controllers: [ServiceInfoController, StatsController],
})
export class StatusModule {}

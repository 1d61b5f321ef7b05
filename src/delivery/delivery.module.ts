import { Module } from '@nestjs/common';
import { TokenProvider } from '../auth/token-provider';
import { AwsModule } from '../aws/aws.module';
import { BreakerModule } from '../breaker/breaker.module';
import { StateModule } from '../state/state.module';
import { SyncModule } from '../sync/sync.module';
import { BundleSink } from './bundle.sink';
import { DeadLetters } from './dead-letters';
import { DeliveryController } from './delivery.controller';
import { DeliveryService } from './delivery.service';
import { RecordsSink } from './records.sink';

@Module({
  imports: [AwsModule, StateModule, SyncModule, BreakerModule],
  controllers: [DeliveryController],
  providers: [TokenProvider, RecordsSink, DeadLetters, DeliveryService, BundleSink],
  exports: [DeliveryService, BundleSink],
})
export class DeliveryModule {}

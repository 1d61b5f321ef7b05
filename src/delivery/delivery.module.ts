import { Module, OnModuleInit } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { AwsModule } from '../aws/aws.module';
import { BreakerModule } from '../breaker/breaker.module';
import { MirrorEvents } from '../mirror/mirror.events';
import { MirrorModule } from '../mirror/mirror.module';
import { StateModule } from '../state/state.module';
import { SyncModule } from '../sync/sync.module';
import { BundleArchive } from './bundle.archive';
import { BundleBuilder } from './bundle.builder';
import { BundlePoster } from './bundle.poster';
import { BundleSink } from './bundle.sink';
import { DeadLetters } from './dead-letters.service';
import { DeliveryController } from './delivery.controller';
import { DeliveryService } from './delivery.service';
import { RecordsSink } from './records.sink';

@Module({
  imports: [AwsModule, StateModule, MirrorModule, SyncModule, BreakerModule, AuthModule],
  controllers: [DeliveryController],
  providers: [RecordsSink, DeadLetters, DeliveryService, BundleSink, BundleBuilder, BundleArchive, BundlePoster],
  exports: [DeliveryService, BundleSink],
})
export class DeliveryModule implements OnModuleInit {
  constructor(
    private readonly mirror: MirrorEvents,
    private readonly delivery: DeliveryService,
    private readonly bundles: BundleSink,
  ) {}

  /**
   * The hand-off from the mirror: every committed version goes to delivery and to bundling. Wired
   * at module init, before any bootstrap hook, so that a sync at start-up commits nothing unheard.
   */
  onModuleInit(): void {
    if (this.delivery.enabled) {
      this.mirror.observeDownloads({
        starting: (object) => this.delivery.downloadStarting(object),
        notCommitted: (object, reason) => this.delivery.notCommitted(object, reason),
      });
      this.mirror.onCommitted((committed) => this.delivery.fileCommitted(committed));
    }
    if (this.bundles.enabled) this.mirror.onCommitted((committed) => this.bundles.fileCommitted(committed));
  }
}

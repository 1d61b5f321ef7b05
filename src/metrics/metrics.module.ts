import { Global, Injectable, Module, OnModuleInit } from '@nestjs/common';
import { BreakerModule } from '../breaker/breaker.module';
import { BreakerService } from '../breaker/breaker.service';
import { StateModule } from '../state/state.module';
import { BundleStore, DeliveryLedger, EventInbox } from '../state/state.ports';
import { MetricsController } from './metrics.controller';
import { MetricsEmf } from './metrics.emf';
import { Metrics } from './metrics.service';

/** The gauges that read the state store and the breakers when scraped. */
@Injectable()
class StateGauges implements OnModuleInit {
  constructor(
    private readonly metrics: Metrics,
    private readonly inbox: EventInbox,
    private readonly ledger: DeliveryLedger,
    private readonly bundles: BundleStore,
    private readonly breakers: BreakerService,
  ) {}

  onModuleInit(): void {
    const { metrics } = this;
    metrics.read(metrics.inbox, async () =>
      Object.entries(await this.inbox.inboxCounts()).map(([status, value]) => ({ labels: { status }, value })),
    );
    metrics.read(metrics.files, async () =>
      Object.entries(await this.ledger.ledgerCounts()).map(([status, value]) => ({ labels: { status }, value: value ?? 0 })),
    );
    metrics.read(metrics.bundles, async () =>
      Object.entries((await this.bundles.bundleCounts()).bundles).map(([status, value]) => ({ labels: { status }, value: value ?? 0 })),
    );
    metrics.read(metrics.breakerOpen, async () =>
      (await this.breakers.states()).map((b) => ({ labels: { endpoint: b.name }, value: b.state === 'closed' ? 0 : 1 })),
    );
  }
}

@Global()
@Module({
  imports: [StateModule, BreakerModule],
  controllers: [MetricsController],
  providers: [{ provide: Metrics, useFactory: () => new Metrics({ processMetrics: true }) }, StateGauges, MetricsEmf],
  exports: [Metrics],
})
export class MetricsModule {}

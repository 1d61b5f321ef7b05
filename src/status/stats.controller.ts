import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { BreakerService } from '../breaker/breaker.service';
import { BundleSink } from '../delivery/bundle.sink';
import { DeliveryService } from '../delivery/delivery.service';
import { S3EventsService } from '../sync/s3-events.service';
import { SyncService } from '../sync/sync.service';
import { StatsResponseDto } from './stats.dto';

@ApiTags('status')
@ApiSecurity('api-key')
@Controller('api/v1')
export class StatsController {
  constructor(
    private readonly sync: SyncService,
    private readonly events: S3EventsService,
    private readonly delivery: DeliveryService,
    private readonly breakers: BreakerService,
    private readonly bundles: BundleSink,
  ) {}

  @Get('stats')
  @ApiOperation({ summary: 'Totals, the last run and the progress of running runs' })
  @ApiOkResponse({ type: StatsResponseDto })
  async stats(): Promise<StatsResponseDto> {
    const [sync, events, files, breakers, bundles] = await Promise.all([
      this.sync.stats(),
      this.events.stats(),
      this.delivery.counts(),
      this.breakers.states(),
      this.bundles.stats(),
    ]);
    return { ...sync, events, delivery: { enabled: this.delivery.enabled, files, breakers, bundles } };
  }
}

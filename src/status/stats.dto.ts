import { ApiProperty } from '@nestjs/swagger';
import type { RunProgress } from '../sync/sync.service';
import { EventStatsDto } from '../sync/s3-notification.dto';
import { RunProgressDto, RunSummaryDto } from '../sync/sync.dto';
import type { BreakerState, BundleStatus, LedgerStatus } from '../state/state.ports';

export class StatsTotalsDto {
  @ApiProperty({ example: 5000, description: 'Files in the mirror' }) objects!: number;
  @ApiProperty({ example: 20480000 }) bytes!: number;
  @ApiProperty({ example: 42 }) runs!: number;
  @ApiProperty({ example: 1, description: 'Runs that failed, were interrupted or had failed objects' }) failedRuns!: number;
}

export class BreakerStateDto implements BreakerState {
  @ApiProperty({ example: 'https://api.example.com/calls' }) name!: string;
  @ApiProperty({ enum: ['closed', 'open', 'half-open'] }) state!: BreakerState['state'];
  @ApiProperty({ example: 0, description: 'Consecutive failures counted while closed' }) failures!: number;
  @ApiProperty({ example: 0, description: 'When it last opened (ms since the epoch)' }) openedAt!: number;
  @ApiProperty({ example: 0 }) probeUntil!: number;
  @ApiProperty({ example: 4 }) version!: number;
}

export class BundleStatsDto {
  @ApiProperty({ description: 'Whether NIFI_ENDPOINT_URL and ARCHIVE_BUCKET_NAME are set' }) enabled!: boolean;
  @ApiProperty({ example: 3, description: 'Committed files recorded for bundling, not yet in a bundle' }) waitingFiles!: number;
  @ApiProperty({ example: { posted: 40, archived: 1 }, description: 'Bundles per status (sealed, archived, posted, failed)' })
  bundles!: Partial<Record<BundleStatus, number>>;
}

export class DeliveryStatsDto {
  @ApiProperty({ description: 'Whether CALL_DETAILS_URL is set' }) enabled!: boolean;
  @ApiProperty({ example: { delivered: 120, delivering: 2 }, description: 'Files per ledger status' }) files!: Partial<
    Record<LedgerStatus, number>
  >;
  @ApiProperty({ type: [BreakerStateDto] }) breakers!: BreakerStateDto[];
  @ApiProperty({ type: BundleStatsDto }) bundles!: BundleStatsDto;
}

export class StatsResponseDto {
  @ApiProperty({ type: StatsTotalsDto }) totals!: StatsTotalsDto;
  @ApiProperty({ type: RunSummaryDto, nullable: true }) lastRun!: RunSummaryDto | null;
  @ApiProperty({ type: [RunProgressDto] }) running!: RunProgress[];
  @ApiProperty({ type: EventStatsDto, description: 'Real-time sync from S3 events (webhook and queue)' }) events!: EventStatsDto;
  @ApiProperty({
    type: DeliveryStatsDto,
    description: 'Delivery downstream: files per ledger status, the circuit breakers and the bundles',
  })
  delivery!: DeliveryStatsDto;
}

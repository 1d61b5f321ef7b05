import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { ApplyResult, EventsReport, EventStats, RecordOutcome } from './s3-events.service';

export class RecordOutcomeDto implements RecordOutcome {
  @ApiProperty({ example: 0, description: 'Position of the record in the notification (after unwrapping envelopes)' }) index!: number;
  @ApiProperty({ enum: ['accepted', 'ignored', 'rejected'] }) status!: RecordOutcome['status'];
  @ApiPropertyOptional({ example: 'logs/2026/11/23/app 1.jsonl', description: 'The decoded object key' }) key?: string;
  @ApiPropertyOptional({ enum: ['put', 'delete'] }) op?: RecordOutcome['op'];
  @ApiPropertyOptional({ example: 'key is outside S3_PREFIX "logs/"' }) reason?: string;
}

export class EventsReportDto implements EventsReport {
  @ApiProperty({ example: 1, description: 'Changes recorded durably; they are applied to the mirror shortly after the answer' })
  accepted!: number;
  @ApiProperty({ example: 0, description: 'Records that need no change (test event, other bucket, outside the prefix...)' })
  ignored!: number;
  @ApiProperty({ example: 0, description: 'Records that cannot be applied (malformed, unsafe key)' })
  rejected!: number;
  @ApiProperty({ type: [RecordOutcomeDto] }) records!: RecordOutcomeDto[];
}

/** An S3 event notification as S3 sends it; SNS notifications and EventBridge events are accepted too. */
export const S3_NOTIFICATION_EXAMPLE = {
  Records: [
    {
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventTime: '2026-11-23T10:00:00.000Z',
      eventName: 'ObjectCreated:Put',
      s3: {
        s3SchemaVersion: '1.0',
        bucket: { name: 'my-bucket', arn: 'arn:aws:s3:::my-bucket' },
        object: {
          key: 'logs/2026/11/23/app+1.jsonl',
          size: 1024,
          eTag: 'd41d8cd98f00b204e9800998ecf8427e',
          sequencer: '0055AED6DCD90281E5',
        },
      },
    },
  ],
};

export class AppliedCountsDto implements Record<ApplyResult, number> {
  @ApiProperty({ example: 120, description: 'Objects fetched and committed' }) downloaded!: number;
  @ApiProperty({ example: 4, description: 'Local files deleted' }) deleted!: number;
  @ApiProperty({ example: 2, description: 'Already mirrored at that ETag' }) unchanged!: number;
  @ApiProperty({ example: 3, description: 'Dropped: not newer than the last event applied to the key (duplicates, reordering)' })
  stale!: number;
  @ApiProperty({ example: 0, description: 'Object deleted again before it could be fetched' }) gone!: number;
  @ApiProperty({ example: 0, description: 'Not applied by configuration (MAX_FILE_SIZE_MB, DELETE_REMOVED_FILES=false)' }) skipped!: number;
  @ApiProperty({ example: 0, description: 'Delete events for objects S3 still has (a HEAD found them): the file is kept' }) kept!: number;
}

export class LatencyDto {
  @ApiProperty({ nullable: true, example: 6 }) p50!: number | null;
  @ApiProperty({ nullable: true, example: 31 }) p99!: number | null;
  @ApiProperty({ example: 2048 }) samples!: number;
}

export class EventStatsDto implements EventStats {
  @ApiProperty({ example: 129 }) accepted!: number;
  @ApiProperty({ example: 1 }) ignored!: number;
  @ApiProperty({ example: 0 }) rejected!: number;
  @ApiProperty({ type: AppliedCountsDto }) applied!: AppliedCountsDto;
  @ApiProperty({ example: 0, description: 'Applications that failed after the download retries' }) failed!: number;
  @ApiProperty({ example: 0, description: 'Changes queued or being applied now' }) inFlight!: number;
  @ApiProperty({ example: 0, description: 'Accepted webhook events not yet applied (durable inbox)' }) pending!: number;
  @ApiProperty({ example: 0, description: 'Webhook events that failed; tried again after a backoff (EVENT_RETRY_BASE_SECONDS)' })
  parked!: number;
  @ApiProperty({ example: 0, description: 'Webhook events given up (EVENT_MAX_ATTEMPTS, or a clash); POST /api/v1/events/parked/retry' })
  dead!: number;
  @ApiProperty({ type: LatencyDto, description: 'Milliseconds from acceptance to the committed change, recent events' })
  latencyMs!: LatencyDto;
}

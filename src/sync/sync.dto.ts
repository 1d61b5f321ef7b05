import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ArrayMaxSize, IsBoolean, IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { splitPatterns } from '../common/key-filter';
import { CursorPageQueryDto } from '../common/paging.dto';
import type { RunCounts, RunItem, RunRecord } from '../state/state.ports';

/** Query booleans arrive as strings; anything but true/false is left as is so validation names it. */
const queryBoolean = ({ value }: { value: unknown }): unknown => (value === 'true' ? true : value === 'false' ? false : value);

const MAX_REQUEST_PATTERNS = 100;

/** `?include=a&include=b` and `?include=a,b` alike; anything but strings is left for validation to name. */
const queryPatterns = ({ value }: { value: unknown }): unknown => {
  const values: unknown[] = Array.isArray(value) ? value : [value];
  return values.every((v) => typeof v === 'string') ? (values as string[]).flatMap(splitPatterns) : value;
};

/** A query parameter of rclone globs, bounded in count and length. */
function PatternsQuery(description: string, example: string[]): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ type: [String], description, example }),
    IsOptional(),
    Transform(queryPatterns),
    ArrayMaxSize(MAX_REQUEST_PATTERNS),
    IsString({ each: true }),
    MaxLength(1024, { each: true }),
  );
}

export class SyncRequestDto {
  @ApiPropertyOptional({ description: 'Sync only keys under this prefix (must lie under S3_PREFIX)', example: 'logs/2026/' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  prefix?: string;

  @ApiPropertyOptional({ description: 'Answer 202 at once with the run id instead of waiting for the report', default: false })
  @IsOptional()
  @Transform(queryBoolean)
  @IsBoolean()
  background?: boolean;

  @ApiPropertyOptional({ description: 'Plan and report without touching the disk', default: false })
  @IsOptional()
  @Transform(queryBoolean)
  @IsBoolean()
  dryRun?: boolean;

  @ApiPropertyOptional({ description: 'Allow a run to delete every mirrored file under the prefix', default: false })
  @IsOptional()
  @Transform(queryBoolean)
  @IsBoolean()
  allowDeleteAll?: boolean;

  @PatternsQuery(
    'Only keys matching one of these rclone globs (repeat the parameter or separate with commas), within SYNC_INCLUDE / SYNC_EXCLUDE',
    ['*.jsonl'],
  )
  include?: string[];

  @PatternsQuery('Leave out keys matching any of these rclone globs: neither fetched nor deleted by this run', ['*.tmp', '/logs/archive/'])
  exclude?: string[];
}

export class RunCountsDto implements RunCounts {
  @ApiProperty({ example: 5000, description: 'Objects listed' }) listed!: number;
  @ApiProperty({ example: 12, description: 'Objects planned for download' }) toDownload!: number;
  @ApiProperty({ example: 1, description: 'Local files planned for deletion' }) toDelete!: number;
  @ApiProperty({ example: 98304 }) bytesToDownload!: number;
  @ApiProperty({ example: 12 }) downloaded!: number;
  @ApiProperty({ example: 1 }) deleted!: number;
  @ApiProperty({ example: 4987, description: 'Unchanged, adopted or too large' }) skipped!: number;
  @ApiProperty({ example: 0 }) failed!: number;
  @ApiProperty({ example: 0, description: 'Keys refused because they are unsafe as local paths' }) refused!: number;
  @ApiProperty({ example: 0, description: "Keys left out by SYNC_INCLUDE / SYNC_EXCLUDE or the request's include / exclude" })
  excluded!: number;
  @ApiProperty({ example: 0, description: 'Objects in GLACIER / DEEP_ARCHIVE (or an archive tier) not restored: reported, not fetched' })
  archived!: number;
  @ApiProperty({ example: 98304 }) bytesDownloaded!: number;
}

export class SyncDetailDto {
  @ApiProperty({ enum: ['download', 'delete', 'skip', 'refuse'] }) operation!: RunItem['operation'];
  @ApiProperty({ example: 'logs/2026/11/23/app.jsonl' }) file_key!: string;
  @ApiProperty({ enum: ['success', 'failed', 'skipped', 'planned'] }) status!: RunItem['status'];
  @ApiPropertyOptional({ example: 'new; 4096 bytes, verified by md5' }) message?: string;

  static from(item: RunItem): SyncDetailDto {
    return { operation: item.operation, file_key: item.key, status: item.status, message: item.message };
  }
}

const RUN_STATUSES = ['running', 'completed', 'completed_with_errors', 'failed', 'aborted', 'interrupted'];
const OUTCOMES = ['success', 'partial', 'failed', 'running'] as const;
export type RunOutcome = (typeof OUTCOMES)[number];

/**
 * The FastAPI service's reading of a run, which its clients test: `success` when nothing failed,
 * `partial` when some operations failed and others succeeded, `failed` otherwise.
 */
export function runOutcome(run: Pick<RunRecord, 'status'>, successful: number): RunOutcome {
  switch (run.status) {
    case 'running':
      return 'running';
    case 'completed':
      return 'success';
    case 'completed_with_errors':
      return successful > 0 ? 'partial' : 'failed';
    default:
      return 'failed';
  }
}

export class SyncRunResponseDto {
  @ApiProperty({ example: '1b4e28ba-2fa1-11d2-883f-0016d3cca427' }) run_id!: string;
  @ApiProperty({
    enum: OUTCOMES,
    description: 'success: nothing failed; partial: some operations failed; failed: the run or all its operations failed',
  })
  status!: RunOutcome;
  @ApiProperty({ enum: RUN_STATUSES, description: "The run's lifecycle status" }) run_status!: RunRecord['status'];
  @ApiProperty({ example: 'Synced 13 of 13 files in 1.42 seconds', description: 'Or, for a run that failed or was stopped, why' })
  message!: string;
  @ApiProperty({ example: 'listed 5000, downloaded 12, deleted 1, unchanged 4987, failed 0, refused 0' }) summary!: string;
  @ApiProperty({ example: '' }) prefix!: string;
  @ApiProperty() dry_run!: boolean;
  @ApiProperty({ enum: ['api', 'schedule', 'startup'] }) trigger!: RunRecord['trigger'];
  @ApiProperty({ example: 13, description: 'Objects the run acted on (or, dry run, would): downloads, deletions, refused keys' })
  processed_files!: number;
  @ApiProperty({ example: 13, description: 'Downloads and deletions that succeeded' }) successful_operations!: number;
  @ApiProperty({ example: 0, description: 'Downloads and deletions that failed, and refused keys' }) failed_operations!: number;
  @ApiProperty({ example: 1.42 }) duration_seconds!: number;
  @ApiProperty({ example: '2026-11-23T10:00:00.000Z' }) started_at!: string;
  @ApiPropertyOptional({ example: '2026-11-23T10:00:01.420Z' }) finished_at?: string;
  @ApiProperty({ type: RunCountsDto }) counts!: RunCountsDto;
  @ApiProperty({ type: [SyncDetailDto], description: 'Per-object outcomes (unchanged objects are counted, not listed)' })
  sync_details!: SyncDetailDto[];
  @ApiProperty({ description: 'True when sync_details was cut; page through GET /api/v1/sync/runs/{id}/items' })
  sync_details_truncated!: boolean;

  static from(run: RunRecord, items: RunItem[], truncated: boolean, nowMs: number): SyncRunResponseDto {
    const c = run.counts;
    const end = run.finishedAt?.getTime() ?? nowMs;
    const seconds = Math.round(end - run.startedAt.getTime()) / 1000;
    const successful = run.dryRun ? 0 : c.downloaded + c.deleted;
    const failed = c.failed + c.refused;
    const processed = run.dryRun ? c.toDownload + c.toDelete + c.refused : successful + failed;
    const finishedNormally = run.status === 'completed' || run.status === 'completed_with_errors';
    return {
      run_id: run.id,
      status: runOutcome(run, successful),
      run_status: run.status,
      message: finishedNormally
        ? `${run.dryRun ? 'Would sync' : 'Synced'} ${run.dryRun ? processed - c.refused : successful} of ${processed} files in ${seconds.toFixed(2)} seconds`
        : (run.message ?? run.status),
      summary: run.message ?? '',
      prefix: run.prefix,
      dry_run: run.dryRun,
      trigger: run.trigger,
      processed_files: processed,
      successful_operations: successful,
      failed_operations: failed,
      duration_seconds: seconds,
      started_at: run.startedAt.toISOString(),
      finished_at: run.finishedAt?.toISOString(),
      counts: c,
      sync_details: items.map(SyncDetailDto.from),
      sync_details_truncated: truncated,
    };
  }
}

export class SyncAcceptedDto {
  @ApiProperty({ example: '1b4e28ba-2fa1-11d2-883f-0016d3cca427' }) run_id!: string;
  @ApiProperty({ example: 'running' }) status!: string;
  @ApiProperty({ example: '/api/v1/sync/runs/1b4e28ba-2fa1-11d2-883f-0016d3cca427' }) status_url!: string;
}

export class RunProgressDto {
  @ApiProperty() runId!: string;
  @ApiProperty() prefix!: string;
  @ApiProperty() dryRun!: boolean;
  @ApiProperty() startedAt!: Date;
  @ApiProperty({ type: RunCountsDto }) counts!: RunCountsDto;
  @ApiProperty({ example: 3.2 }) elapsedSeconds!: number;
  @ApiProperty({ example: 104857600 }) bytesPerSecond!: number;
  @ApiProperty({ example: 2900 }) objectsPerSecond!: number;
  @ApiProperty({ nullable: true, type: Number, example: 12.5 }) etaSeconds!: number | null;
  @ApiProperty({ description: 'Still listing the bucket (the plan is not complete yet)' }) listing!: boolean;
}

export class RunSummaryDto {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: RUN_STATUSES }) status!: string;
  @ApiProperty() prefix!: string;
  @ApiProperty() trigger!: string;
  @ApiProperty() dryRun!: boolean;
  @ApiPropertyOptional() message?: string;
  @ApiProperty() startedAt!: Date;
  @ApiPropertyOptional() finishedAt?: Date;
  @ApiProperty({ type: RunCountsDto }) counts!: RunCountsDto;
}

export class RunItemsResponseDto {
  @ApiProperty() runId!: string;
  @ApiProperty() offset!: number;
  @ApiProperty({ type: [SyncDetailDto] }) items!: SyncDetailDto[];
}

export const FILE_SOURCES = ['s3', 'local'] as const;

export class FilesQueryDto extends CursorPageQueryDto {
  @ApiPropertyOptional({ enum: FILE_SOURCES, default: 'local', description: 'List the bucket or the mirror' })
  @IsOptional()
  @IsIn(FILE_SOURCES)
  source?: (typeof FILE_SOURCES)[number];

  @ApiPropertyOptional({ example: 'logs/' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  prefix?: string;
}

export class FileEntryDto {
  @ApiProperty({ example: 'logs/2026/11/23/app.jsonl' }) key!: string;
  @ApiProperty({ example: 4096 }) size!: number;
  @ApiProperty({ example: '9e107d9d372bb6826bd81d3542a419d6' }) etag!: string;
  @ApiProperty() lastModified!: Date;
  @ApiPropertyOptional({ description: 'local only: how the file was verified', example: 'md5' }) verifiedBy?: string;
  @ApiPropertyOptional({ description: 'local only' }) syncedAt?: Date;
  @ApiPropertyOptional({ description: 'local only: path under LOCAL_DOWNLOAD_DIR' }) localPath?: string;
}

export class FilesResponseDto {
  @ApiProperty({ enum: FILE_SOURCES }) source!: string;
  @ApiProperty() prefix!: string;
  @ApiProperty({ type: [FileEntryDto] }) files!: FileEntryDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as cursor for the next page; null on the last page' })
  nextCursor!: string | null;
}

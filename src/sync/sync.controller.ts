import { Controller, Get, HttpCode, HttpStatus, Param, ParseUUIDPipe, Post, Query, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiTooManyRequestsResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiSecurity,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { Clock } from '../common/clock';
import { DEFAULT_PAGE_LIMIT, OffsetPageQueryDto } from '../common/paging.dto';
import { RunItemsResponseDto, RunSummaryDto, SyncAcceptedDto, SyncDetailDto, SyncRequestDto, SyncRunResponseDto } from './sync.dto';
import { SyncService } from './sync.service';

/** How many per-object outcomes a run report carries inline; the rest are paged. */
const REPORT_DETAILS = 1000;

@ApiTags('sync')
@ApiSecurity('api-key')
@Controller('api/v1')
export class SyncController {
  constructor(
    private readonly sync: SyncService,
    private readonly clock: Clock,
  ) {}

  @Post('sync')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Run a full sync of the bucket (or a prefix)', description: 'Waits for the report unless background=true.' })
  @ApiOkResponse({ type: SyncRunResponseDto, description: 'The finished run' })
  @ApiAcceptedResponse({ type: SyncAcceptedDto, description: 'background=true: the run was started' })
  @ApiConflictResponse({ description: 'A run of an overlapping prefix is going; the body names its run id' })
  @ApiTooManyRequestsResponse({ description: 'MAX_CONCURRENT_RUNS syncs are running; the body lists their ids' })
  @ApiBadRequestResponse({ description: 'A parameter is invalid' })
  async start(@Query() query: SyncRequestDto, @Res({ passthrough: true }) res: Response): Promise<SyncRunResponseDto | SyncAcceptedDto> {
    const { run, done } = await this.sync.start({
      prefix: query.prefix,
      dryRun: query.dryRun,
      allowDeleteAll: query.allowDeleteAll,
      include: query.include,
      exclude: query.exclude,
      trigger: 'api',
    });
    if (query.background) {
      res.status(HttpStatus.ACCEPTED);
      return { run_id: run.id, status: run.status, status_url: `/api/v1/sync/runs/${run.id}` };
    }
    await done;
    return this.runReport(run.id);
  }

  @Get('sync/runs')
  @ApiOperation({ summary: 'Recent sync runs, newest first' })
  @ApiOkResponse({ type: [RunSummaryDto] })
  listRuns(): Promise<RunSummaryDto[]> {
    return this.sync.listRuns(50);
  }

  @Get('sync/runs/:id')
  @ApiOperation({ summary: 'Status, progress and report of one run' })
  @ApiOkResponse({ type: SyncRunResponseDto })
  @ApiNotFoundResponse()
  runReport(@Param('id', new ParseUUIDPipe()) id: string): Promise<SyncRunResponseDto> {
    return this.sync
      .report(id, REPORT_DETAILS)
      .then(({ run, items, truncated }) => SyncRunResponseDto.from(run, items, truncated, this.clock.nowMs()));
  }

  @Get('sync/runs/:id/items')
  @ApiOperation({ summary: 'Per-object outcomes of a run, paged' })
  @ApiOkResponse({ type: RunItemsResponseDto })
  @ApiNotFoundResponse()
  async runItems(@Param('id', new ParseUUIDPipe()) id: string, @Query() query: OffsetPageQueryDto): Promise<RunItemsResponseDto> {
    const offset = query.offset ?? 0;
    const items = await this.sync.items(id, offset, query.limit ?? DEFAULT_PAGE_LIMIT);
    return { runId: id, offset, items: items.map(SyncDetailDto.from) };
  }
}

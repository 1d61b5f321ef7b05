import { Controller, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { CursorPageQueryDto, DEFAULT_PAGE_LIMIT } from '../common/paging.dto';
import type { InboxEntry } from '../state/state.ports';
import { S3EventsService } from './s3-events.service';

const PARKED_STATUSES = ['failed', 'dead'] as const;

export class ParkedQueryDto extends CursorPageQueryDto {
  @ApiPropertyOptional({ enum: PARKED_STATUSES, default: 'failed', description: 'failed: waiting for a retry; dead: given up' })
  @IsOptional()
  @IsIn(PARKED_STATUSES)
  status?: (typeof PARKED_STATUSES)[number];

  /** A parked event's id: anything else is refused rather than read as a place in the list. */
  @IsOptional()
  @IsUUID()
  declare cursor?: string;
}

export class ParkedEventDto {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['webhook', 'sqs'] }) source!: string;
  @ApiProperty({ enum: ['put', 'delete'] }) op!: string;
  @ApiProperty({ example: 'logs/2026/11/23/app.jsonl' }) key!: string;
  @ApiProperty({ enum: PARKED_STATUSES }) status!: string;
  @ApiProperty({ example: 3 }) attempts!: number;
  @ApiPropertyOptional({ example: 'S3 GetObject answered 503' }) lastError?: string;
  @ApiPropertyOptional({ description: 'When it is tried next (failed only)' }) retryAt?: Date;
  @ApiProperty() receivedAt!: Date;

  static from(e: InboxEntry): ParkedEventDto {
    return {
      id: e.id,
      source: e.source,
      op: e.change.op,
      key: e.change.key,
      status: e.status,
      attempts: e.attempts,
      lastError: e.lastError,
      retryAt: e.retryAt,
      receivedAt: e.receivedAt,
    };
  }
}

export class ParkedEventsPageDto {
  @ApiProperty({ type: [ParkedEventDto] }) events!: ParkedEventDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

export class ParkedRetryDto {
  @ApiProperty({ example: 3, description: 'Events put back in the queue' }) retried!: number;
}

/** Webhook events whose apply failed: what they are, and a retry now instead of at their backoff. */
@ApiTags('events')
@ApiSecurity('api-key')
@Controller('api/v1/events/parked')
export class ParkedEventsController {
  constructor(private readonly events: S3EventsService) {}

  @Get()
  @ApiOperation({ summary: 'Webhook events that failed to apply, oldest first' })
  @ApiOkResponse({ type: ParkedEventsPageDto })
  async list(@Query() query: ParkedQueryDto): Promise<ParkedEventsPageDto> {
    const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
    const page = await this.events.parkedEvents(query.status ?? 'failed', limit, query.cursor);
    return { events: page.map(ParkedEventDto.from), nextCursor: page.length === limit ? page[page.length - 1].id : null };
  }

  @Post('retry')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Retry every parked and given-up webhook event now' })
  @ApiOkResponse({ type: ParkedRetryDto })
  async retry(): Promise<ParkedRetryDto> {
    return { retried: await this.events.retryParked({ includeDead: true }) };
  }
}

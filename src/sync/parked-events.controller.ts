import { Controller, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsUUID, Max, Min } from 'class-validator';
import { Type } from 'class-transformer';
import type { InboxEntry } from '../state/state.ports';
import { S3EventsService } from './s3-events.service';

const PARKED_STATUSES = ['failed', 'dead'] as const;

export class ParkedQueryDto {
  @ApiPropertyOptional({ enum: PARKED_STATUSES, default: 'failed', description: 'failed: waiting for a retry; dead: given up' })
  @IsOptional()
  @IsIn(PARKED_STATUSES)
  status?: (typeof PARKED_STATUSES)[number];

  @ApiPropertyOptional({ default: 100, minimum: 1, maximum: 1000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;

  @ApiPropertyOptional({ description: 'The nextCursor of the previous page' })
  @IsOptional()
  @IsUUID()
  cursor?: string;
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
    const limit = query.limit ?? 100;
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

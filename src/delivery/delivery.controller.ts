import { Controller, Get, HttpCode, HttpStatus, Post, Query, Req } from '@nestjs/common';
import { ApiAcceptedResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { DEFAULT_PAGE_LIMIT, OffsetPageQueryDto } from '../common/paging.dto';
import { keyFromRoute } from '../common/route-key';
import { DeadLetters } from './dead-letters.service';
import { DeadLettersResponseDto, FileStatusDto, RedriveResponseDto, StatusQueryDto } from './delivery.dto';
import { DeliveryService } from './delivery.service';

const FILES_ROUTE = '/api/v1/files/';

@ApiTags('delivery')
@ApiSecurity('api-key')
@Controller('api/v1')
export class DeliveryController {
  constructor(
    private readonly delivery: DeliveryService,
    private readonly deadLetters: DeadLetters,
  ) {}

  @Get('status')
  @ApiOperation({ summary: 'Delivery status of one file version' })
  @ApiOkResponse({ type: FileStatusDto })
  @ApiNotFoundResponse({ description: 'No delivery recorded for this fileId' })
  async status(@Query() query: StatusQueryDto): Promise<FileStatusDto> {
    return FileStatusDto.from(await this.delivery.status(query.fileId));
  }

  @Get('files/*key/status')
  @ApiOperation({ summary: 'Delivery status of the latest version of a key' })
  @ApiParam({ name: 'key', example: 'logs/2026/11/23/app.jsonl' })
  @ApiOkResponse({ type: FileStatusDto })
  async fileStatus(@Req() req: Request): Promise<FileStatusDto> {
    return FileStatusDto.from(await this.delivery.statusOfKey(keyFromRoute(req.originalUrl, FILES_ROUTE, '/status', 'key')));
  }

  @Post('files/*key/reprocess')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: 'Deliver the mirrored version of a key again, from its first batch' })
  @ApiParam({ name: 'key', example: 'logs/2026/11/23/app.jsonl' })
  @ApiAcceptedResponse({ type: FileStatusDto })
  async reprocess(@Req() req: Request): Promise<FileStatusDto> {
    return FileStatusDto.from(await this.delivery.reprocess(keyFromRoute(req.originalUrl, FILES_ROUTE, '/reprocess', 'key')));
  }

  @Get('dead-letters')
  @ApiOperation({ summary: 'Records and batches that could not be delivered, oldest first' })
  @ApiOkResponse({ type: DeadLettersResponseDto })
  deadLetterList(@Query() query: OffsetPageQueryDto): Promise<DeadLettersResponseDto> {
    return this.deadLetters.list(query.offset ?? 0, query.limit ?? DEFAULT_PAGE_LIMIT);
  }

  @Post('dead-letters/redrive')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Send dead-lettered batches again (records that could not be parsed stay)' })
  @ApiOkResponse({ type: RedriveResponseDto })
  redrive(): Promise<RedriveResponseDto> {
    return this.delivery.redrive();
  }
}

import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { StatsResponseDto } from './sync.dto';
import { S3EventsService } from './s3-events.service';
import { SyncService } from './sync.service';

@ApiTags('status')
@ApiSecurity('api-key')
@Controller('api/v1')
export class StatsController {
  constructor(
    private readonly sync: SyncService,
    private readonly events: S3EventsService,
  ) {}

  @Get('stats')
  @ApiOperation({ summary: 'Totals, the last run and the progress of running runs' })
  @ApiOkResponse({ type: StatsResponseDto })
  async stats(): Promise<StatsResponseDto> {
    const [sync, events] = await Promise.all([this.sync.stats(), this.events.stats()]);
    return { ...sync, events };
  }
}

import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { StatsResponseDto } from './sync.dto';
import { SyncService } from './sync.service';

@ApiTags('status')
@ApiSecurity('api-key')
@Controller('api/v1')
export class StatsController {
  constructor(private readonly sync: SyncService) {}

  @Get('stats')
  @ApiOperation({ summary: 'Totals, the last run and the progress of running runs' })
  @ApiOkResponse({ type: StatsResponseDto })
  stats(): Promise<StatsResponseDto> {
    return this.sync.stats();
  }
}

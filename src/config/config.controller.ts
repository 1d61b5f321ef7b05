import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { AppConfig } from './app-config';

@ApiTags('service')
@Controller('api/v1')
export class ConfigController {
  constructor(private readonly config: AppConfig) {}

  @Get('config')
  @ApiSecurity('api-key')
  @ApiOperation({ summary: 'The effective configuration, secrets redacted' })
  effectiveConfig(): Record<string, unknown> {
    return this.config.redacted();
  }
}

import { Controller, Get, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { callerHoldsKey, Public } from '../auth/api-key.guard';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { SERVICE_NAME, SERVICE_VERSION } from './service-info';

class ServiceInfoDto {
  @ApiProperty({ example: SERVICE_NAME }) name!: string;
  @ApiProperty({ example: SERVICE_VERSION }) version!: string;
  @ApiProperty({ example: 3600.5 }) uptimeSeconds!: number;
  @ApiPropertyOptional({ example: 'my-bucket', description: 'Only to callers holding the API key, when one is set' }) bucket?: string;
  @ApiProperty({ example: { docs: '/docs', openapi: '/docs-json', health: '/api/v1/health' } }) links!: Record<string, string>;
}

@ApiTags('service')
@Controller()
export class ServiceInfoController {
  private readonly startedMs: number;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.startedMs = clock.nowMs();
  }

  @Get()
  @Public()
  @ApiOperation({ summary: 'Service name, version, uptime and links' })
  @ApiOkResponse({ type: ServiceInfoDto })
  info(@Req() req: Request): ServiceInfoDto {
    return {
      name: SERVICE_NAME,
      version: SERVICE_VERSION,
      uptimeSeconds: (this.clock.nowMs() - this.startedMs) / 1000,
      ...(callerHoldsKey(req) ? { bucket: this.config.s3.bucket } : {}),
      links: {
        docs: '/docs',
        openapi: '/docs-json',
        health: '/api/v1/health',
        stats: '/api/v1/stats',
        config: '/api/v1/config',
        sync: '/api/v1/sync',
        files: '/api/v1/files',
      },
    };
  }

  @Get('ping')
  @Public()
  @ApiOperation({ summary: 'Answers pong' })
  ping(): { pong: true } {
    return { pong: true };
  }
}

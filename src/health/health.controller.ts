import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { Public } from '../auth/api-key.guard';
import { HealthIndicators } from './health.indicators';

@ApiTags('health')
@Public()
@Controller('api/v1/health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicators,
  ) {}

  @Get()
  @HealthCheck()
  @ApiOperation({
    summary:
      'Readiness: bucket reachable, download directory writable, disk space, state store (503 when not ready); an open downstream circuit breaker shows as degraded',
  })
  ready(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.indicators.bucket(),
      () => this.indicators.downloadDir(),
      () => this.indicators.disk(),
      () => this.indicators.stateStore(),
      () => this.indicators.downstream(),
    ]);
  }

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process answers' })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }
}

import { Controller, Get, HttpException, HttpStatus, Req, ServiceUnavailableException } from '@nestjs/common';
import type { Request } from 'express';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { callerHoldsKey, Public } from '../auth/api-key.guard';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { HealthIndicators } from './health.indicators';

/** The FastAPI service's health answer (its clients read these fields), with terminus's checks beside them. */
export class HealthDto {
  @ApiProperty({ enum: ['healthy', 'unhealthy'] }) status!: 'healthy' | 'unhealthy';
  @ApiProperty({ example: 'Service is healthy' }) message!: string;
  @ApiProperty({ description: 'The bucket answered' }) s3_connection!: boolean;
  @ApiProperty({ example: './data/mirror' }) download_directory!: string;
  @ApiProperty() directory_writable!: boolean;
  @ApiProperty({ example: '2026-11-23T10:00:00.000Z' }) timestamp!: string;
  @ApiProperty({ description: "terminus's result: status ok/error, and info, error and details per check" })
  checks!: HealthCheckResult;
}

@ApiTags('health')
@Public()
@Controller('api/v1/health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicators,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  @Get()
  @ApiOperation({
    summary:
      'Readiness: bucket reachable, download directory writable, disk space, state store (503 when not ready); an open downstream circuit breaker shows as degraded',
  })
  @ApiOkResponse({ type: HealthDto })
  @ApiServiceUnavailableResponse({ type: HealthDto })
  async ready(@Req() req: Request): Promise<HealthDto> {
    let checks: HealthCheckResult;
    try {
      checks = await this.health.check([
        () => this.indicators.bucket(),
        () => this.indicators.downloadDir(),
        () => this.indicators.disk(),
        () => this.indicators.stateStore(),
        () => this.indicators.downstream(),
      ]);
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      checks = err.getResponse() as HealthCheckResult;
    }
    const failed = Object.keys(checks.error ?? {});
    const body: HealthDto = {
      status: checks.status === 'ok' ? 'healthy' : 'unhealthy',
      message: checks.status === 'ok' ? 'Service is healthy' : `Service is unhealthy: ${failed.join(', ')} failed`,
      s3_connection: checks.details.bucket?.status === 'up',
      download_directory: this.config.sync.localDir,
      directory_writable: checks.details.downloadDir?.status === 'up',
      timestamp: this.clock.now().toISOString(),
      // The bucket's name, the free space and the errors' wording are for those who hold the key.
      checks: callerHoldsKey(req) ? checks : statusesOnly(checks),
    };
    if (checks.status !== 'ok') throw new HttpException(body, HttpStatus.SERVICE_UNAVAILABLE);
    return body;
  }

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process answers' })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }
}

/** Each check's status (and the downstream's condition), without the details that name things. */
function statusesOnly(checks: HealthCheckResult): HealthCheckResult {
  const strip = (group: Partial<HealthCheckResult['details']> | undefined): HealthCheckResult['details'] =>
    Object.fromEntries(
      Object.entries(group ?? {}).flatMap(([name, result]) =>
        result ? [[name, { status: result.status, ...(typeof result.condition === 'string' ? { condition: result.condition } : {}) }]] : [],
      ),
    );
  return { status: checks.status, info: strip(checks.info), error: strip(checks.error), details: strip(checks.details) };
}

import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AwsModule } from '../aws/aws.module';
import { BreakerModule } from '../breaker/breaker.module';
import { StateModule } from '../state/state.module';
import { HealthController } from './health.controller';
import { HealthIndicators } from './health.indicators';

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' }), AwsModule, StateModule, BreakerModule],
  controllers: [HealthController],
  providers: [HealthIndicators],
})
export class HealthModule {}

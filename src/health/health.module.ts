import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AwsModule } from '../aws/aws.module';
import { StateModule } from '../state/state.module';
import { HealthController } from './health.controller';
import { HealthIndicators } from './health.indicators';

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' }), AwsModule, StateModule],
  controllers: [HealthController],
  providers: [HealthIndicators],
})
export class HealthModule {}

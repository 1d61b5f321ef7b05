import { Module } from '@nestjs/common';
import { StateModule } from '../state/state.module';
import { BreakerService } from './breaker.service';

@Module({ imports: [StateModule], providers: [BreakerService], exports: [BreakerService] })
export class BreakerModule {}

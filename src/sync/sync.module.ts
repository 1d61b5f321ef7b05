import { Module } from '@nestjs/common';
import { AwsModule } from '../aws/aws.module';
import { StateModule } from '../state/state.module';
import { FilesController } from './files.controller';
import { FileCommitter } from './file-committer';
import { FilesService } from './files.service';
import { Mirror } from './mirror';
import { StatsController } from './stats.controller';
import { SyncController } from './sync.controller';
import { SyncScheduler } from './sync.scheduler';
import { SyncService } from './sync.service';

@Module({
  imports: [AwsModule, StateModule],
  controllers: [SyncController, StatsController, FilesController],
  providers: [Mirror, FileCommitter, SyncService, SyncScheduler, FilesService],
  exports: [SyncService, Mirror],
})
export class SyncModule {}

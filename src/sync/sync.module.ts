import { Module } from '@nestjs/common';
import { AwsModule } from '../aws/aws.module';
import { StateModule } from '../state/state.module';
import { FilesController } from './files.controller';
import { FileCommitter } from './file-committer';
import { FilesService } from './files.service';
import { EventQueueConsumer } from './event-queue.consumer';
import { Mirror } from './mirror';
import { S3EventsService } from './s3-events.service';
import { S3NotificationController } from './s3-notification.controller';
import { SyncController } from './sync.controller';
import { SyncScheduler } from './sync.scheduler';
import { SyncService } from './sync.service';

@Module({
  imports: [AwsModule, StateModule],
  controllers: [SyncController, FilesController, S3NotificationController],
  providers: [Mirror, FileCommitter, SyncService, SyncScheduler, FilesService, S3EventsService, EventQueueConsumer],
  exports: [SyncService, Mirror, S3EventsService],
})
export class SyncModule {}

import { AuthModule } from '../auth/auth.module';
import { Module } from '@nestjs/common';
import { AwsModule } from '../aws/aws.module';
import { MirrorModule } from '../mirror/mirror.module';
import { StateModule } from '../state/state.module';
import { EventQueueConsumer } from './event-queue.consumer';
import { FilesController } from './files.controller';
import { FilesService } from './files.service';
import { S3EventsService } from './s3-events.service';
import { ParkedEventsController } from './parked-events.controller';
import { S3NotificationController } from './s3-notification.controller';
import { SyncController } from './sync.controller';
import { SyncScheduler } from './sync.scheduler';
import { SyncService } from './sync.service';
import { ReadThrough } from './read-through.service';
import { WorkQueue } from './work.queue';

/**
 * What changes the mirror: full syncs (SyncService, on a schedule or on demand) and S3 events
 * (webhook and SQS, both into S3EventsService). Every change goes through the one WorkQueue to
 * MirrorService.
 */
@Module({
  imports: [AwsModule, StateModule, MirrorModule, AuthModule],
  controllers: [SyncController, FilesController, S3NotificationController, ParkedEventsController],
  providers: [WorkQueue, SyncService, SyncScheduler, FilesService, S3EventsService, EventQueueConsumer, ReadThrough],
  exports: [SyncService, S3EventsService, ReadThrough],
})
export class SyncModule {}

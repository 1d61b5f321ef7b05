import { Module } from '@nestjs/common';
import { AwsModule } from '../aws/aws.module';
import { StateModule } from '../state/state.module';
import { FileCommitter } from './file.committer';
import { LocalDirs } from './local-dirs.service';
import { MirrorEvents } from './mirror.events';
import { MirrorService } from './mirror.service';
import { ObjectFetcher } from './object.fetcher';

/** The disk engine: everything that writes or resolves a file of the mirror. Others use MirrorService and MirrorEvents only. */
@Module({
  imports: [AwsModule, StateModule],
  providers: [MirrorService, MirrorEvents, ObjectFetcher, LocalDirs, FileCommitter],
  exports: [MirrorService, MirrorEvents],
})
export class MirrorModule {}

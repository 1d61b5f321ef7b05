import { Module } from '@nestjs/common';
import { S3Repository } from './s3.repository';
import { SqsRepository } from './sqs.repository';

@Module({ providers: [S3Repository, SqsRepository], exports: [S3Repository, SqsRepository] })
export class AwsModule {}

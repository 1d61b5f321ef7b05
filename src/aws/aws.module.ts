import { Module } from '@nestjs/common';
import { DynamoRepository } from './dynamodb.repository';
import { S3Repository } from './s3.repository';
import { SecretsRepository } from './secrets.repository';
import { SqsRepository } from './sqs.repository';

@Module({
  providers: [S3Repository, SqsRepository, DynamoRepository, SecretsRepository],
  exports: [S3Repository, SqsRepository, DynamoRepository, SecretsRepository],
})
export class AwsModule {}

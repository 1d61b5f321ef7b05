import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotEmpty, IsString, MaxLength } from 'class-validator';
import type { LedgerEntry, LedgerStatus } from '../state/state.ports';
import type { DeadLetter } from './dead-letters.service';

export class StatusQueryDto {
  @ApiProperty({ example: 'my-bucket/logs/2026/11/23/app.jsonl@9b2cf535f27731c974343645a3985328', description: 'bucket/key@etag' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(2048)
  fileId!: string;
}

export class FileStatusDto {
  @ApiProperty({ example: 'my-bucket/logs/2026/11/23/app.jsonl@9b2cf535f27731c974343645a3985328' }) fileId!: string;
  @ApiProperty({ example: 'logs/2026/11/23/app.jsonl' }) key!: string;
  @ApiProperty({
    enum: ['pending', 'synced', 'delivering', 'delivered', 'failed', 'dead'],
    description: 'pending: being downloaded; synced: committed, waiting for delivery; failed: see lastError',
  })
  status!: LedgerStatus;
  @ApiProperty({ example: '2026-11-23T10:00:02.000Z', description: 'When the status last changed' }) timestamp!: string;
  @ApiProperty({ example: 1200 }) recordsParsed!: number;
  @ApiProperty({ example: 1198 }) recordsSent!: number;
  @ApiProperty({ example: 2, description: 'Records that became dead letters' }) recordsFailed!: number;
  @ApiProperty({ example: 3, description: 'Batches acknowledged in order: the checkpoint a restart resumes from' })
  batchesAcknowledged!: number;
  @ApiProperty({ example: 1 }) attempts!: number;
  @ApiPropertyOptional({ example: 'downstream answered 503' }) lastError?: string;
  @ApiProperty({ example: '2026-11-23T10:00:00.000Z' }) createdAt!: string;
  @ApiPropertyOptional({ example: '2026-11-23T10:00:02.000Z' }) deliveredAt?: string;

  static from(e: LedgerEntry): FileStatusDto {
    return {
      fileId: e.fileId,
      key: e.key,
      status: e.status,
      timestamp: e.updatedAt.toISOString(),
      recordsParsed: e.recordsParsed,
      recordsSent: e.recordsSent,
      recordsFailed: e.recordsFailed,
      batchesAcknowledged: e.batchesAcked,
      attempts: e.attempts,
      lastError: e.lastError,
      createdAt: e.createdAt.toISOString(),
      deliveredAt: e.deliveredAt?.toISOString(),
    };
  }
}

export class DeadLetterDto implements DeadLetter {
  @ApiProperty() id!: string;
  @ApiProperty({ example: '2026-11-23T10:00:02.000Z' }) at!: string;
  @ApiProperty({ enum: ['record', 'batch'] }) kind!: DeadLetter['kind'];
  @ApiProperty() fileId!: string;
  @ApiProperty() key!: string;
  @ApiPropertyOptional({ example: 17, description: 'Line of an unparseable record' }) line?: number;
  @ApiPropertyOptional({ example: 2 }) batchNo?: number;
  @ApiPropertyOptional() firstLine?: number;
  @ApiPropertyOptional() lastLine?: number;
  @ApiProperty({ example: 'invalid JSON: Unexpected end of JSON input' }) reason!: string;
  @ApiProperty({ example: 4 }) attempts!: number;
  @ApiProperty({ description: 'The raw line, or the batch body as sent' }) payload!: string;
  @ApiPropertyOptional({ description: 'When it was sent again successfully' }) redrivenAt?: string;
}

export class DeadLettersResponseDto {
  @ApiProperty({ example: 3 }) total!: number;
  @ApiProperty({ type: [DeadLetterDto] }) letters!: DeadLetterDto[];
}

export class RedriveResponseDto {
  @ApiProperty({ example: 2 }) redriven!: number;
  @ApiProperty({ example: 0 }) failed!: number;
}

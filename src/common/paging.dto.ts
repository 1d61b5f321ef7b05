import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, Min, MaxLength } from 'class-validator';

export const DEFAULT_PAGE_LIMIT = 100;

/** How many entries a page of a list holds. */
export class PageLimitQueryDto {
  @ApiPropertyOptional({ default: DEFAULT_PAGE_LIMIT, minimum: 1, maximum: 1000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

/** `offset` and `limit` of a list whose entries keep their place (run items, dead letters). */
export class OffsetPageQueryDto extends PageLimitQueryDto {
  @ApiPropertyOptional({ default: 0, minimum: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  offset?: number;
}

/** `cursor` and `limit` of a list that changes while it is read (files, parked events). */
export class CursorPageQueryDto extends PageLimitQueryDto {
  @ApiPropertyOptional({ description: 'The nextCursor of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(4096)
  cursor?: string;
}

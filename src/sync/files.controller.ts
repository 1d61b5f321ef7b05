import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiSecurity,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { NotFoundError } from '../common/errors';
import { DEFAULT_PAGE_LIMIT } from '../common/paging.dto';
import { keyFromRoute } from '../common/route-key';
import { ReadThrough } from './read-through.service';
import { FilesQueryDto, FilesResponseDto } from './sync.dto';
import { FilesService } from './files.service';
import { create as contentDisposition } from 'content-disposition';
import mime from 'mime-types';
import { basename } from 'node:path';

/** Types shown in the browser rather than saved: nothing in them can run. */
const INLINE_TYPES = new Set(['text/plain', 'application/json', 'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf']);

const mimeTypeOf = (name: string): string => (mime.lookup(name) || 'application/octet-stream').split(';')[0];

const DOWNLOAD_ROUTE = '/api/v1/download/';

@ApiTags('files')
@ApiSecurity('api-key')
@Controller('api/v1')
export class FilesController {
  constructor(
    private readonly files: FilesService,
    private readonly readThrough: ReadThrough,
  ) {}

  @Get('files')
  @ApiOperation({ summary: 'List objects in the bucket (source=s3) or files in the mirror (source=local), paged' })
  @ApiOkResponse({ type: FilesResponseDto })
  @ApiBadRequestResponse()
  async list(@Query() query: FilesQueryDto): Promise<FilesResponseDto> {
    const source = query.source ?? 'local';
    const page = await this.files.list(source, query.prefix, query.limit ?? DEFAULT_PAGE_LIMIT, query.cursor);
    return { source, prefix: query.prefix ?? '', ...page };
  }

  @Get('download/*path')
  @ApiOperation({
    summary: 'Download a mirrored file',
    description: 'Supports Range (206), If-None-Match / If-Modified-Since (304). The path is the object key, URL-encoded.',
  })
  @ApiParam({ name: 'path', description: 'The object key', example: 'logs/2026/11/23/app.jsonl' })
  @ApiProduces('application/octet-stream')
  @ApiOkResponse({ description: 'The file' })
  @ApiNotFoundResponse({ description: 'Not in the mirror' })
  @ApiBadRequestResponse({ description: 'The path is not a safe key' })
  async download(@Req() req: Request, @Res() res: Response): Promise<void> {
    const key = keyFromRoute(req.originalUrl, DOWNLOAD_ROUTE);
    const { absPath, entry } = await this.readThrough.open(key);
    res.setHeader('ETag', `"${entry.etag}"`);
    // Bucket content must never run on the API's origin: a page or script from the bucket is a
    // download, and even shown inline it gets a sandbox of its own (no script, no same-origin).
    res.setHeader('Content-Security-Policy', "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'");
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const name = basename(key);
    const inline = req.query.inline === 'true' || INLINE_TYPES.has(mimeTypeOf(name));
    res.setHeader('Content-Disposition', contentDisposition(name, { type: inline ? 'inline' : 'attachment' }));
    await new Promise<void>((resolve, reject) => {
      res.sendFile(absPath, { dotfiles: 'allow', etag: false, lastModified: true, acceptRanges: true }, (err?: Error) => {
        if (!err) return resolve();
        if (res.headersSent) return resolve();
        const status = (err as Error & { status?: number }).status;
        reject(status === 404 ? new NotFoundError(`${key} is not in the mirror`) : err);
      });
    });
  }
}

import { Controller, HttpCode, HttpStatus, Post, Req, UseGuards } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiHeader,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { Request } from 'express';
import { Public } from '../auth/api-key.guard';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, WEBHOOK_PATH } from '../auth/webhook-signature';
import { WebhookSignatureGuard } from '../auth/webhook-signature.guard';
import { S3EventsService } from './s3-events.service';
import { EventsReportDto, S3_NOTIFICATION_EXAMPLE } from './s3-notification.dto';

@ApiTags('events')
// The route is WEBHOOK_PATH itself: the raw-body parser (app.factory.ts) and the Lambda use the same constant.
@Controller()
export class S3NotificationController {
  constructor(private readonly events: S3EventsService) {}

  @Post(WEBHOOK_PATH)
  // Authenticated by the body's HMAC signature instead of the API key.
  @Public()
  @UseGuards(WebhookSignatureGuard)
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary: 'Receive S3 event notifications (from the Lambda forwarder, SNS or EventBridge)',
    description:
      'Each accepted change is stored durably before the answer and applied to the mirror right after it. ' +
      `Sign the raw body: ${SIGNATURE_HEADER}: v1=hex(HMAC-SHA256(WEBHOOK_SECRET, "v1:" + timestamp + ":" + body)), ${TIMESTAMP_HEADER}: Unix seconds.`,
  })
  @ApiHeader({ name: SIGNATURE_HEADER, required: true, example: 'v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd' })
  @ApiHeader({ name: TIMESTAMP_HEADER, required: true, example: '1795428000' })
  @ApiBody({ schema: { type: 'object', example: S3_NOTIFICATION_EXAMPLE } })
  @ApiAcceptedResponse({ type: EventsReportDto, description: 'What happened to each record' })
  @ApiBadRequestResponse({ description: 'Not JSON, or not an S3 notification' })
  @ApiUnauthorizedResponse({ description: 'Missing or wrong signature, or a timestamp outside the window' })
  @ApiPayloadTooLargeResponse({ description: 'Body over WEBHOOK_MAX_BODY_KB' })
  @ApiServiceUnavailableResponse({ description: 'WEBHOOK_SECRET is not configured' })
  notify(@Req() req: Request): Promise<EventsReportDto> {
    // The raw body parser (app.factory.ts) leaves a Buffer; anything else is no notification.
    const raw: unknown = req.body;
    return this.events.accept(Buffer.isBuffer(raw) ? raw.toString('utf8') : '', 'webhook');
  }
}

/** One change to one key, as S3 notified it: what the event inbox stores and the work queue applies. */
export type ChangeOp = 'put' | 'delete';

export interface ObjectChange {
  bucket: string;
  key: string;
  op: ChangeOp;
  /** As S3 named it: `ObjectCreated:Put`, `ObjectRemoved:DeleteMarkerCreated`, `Object Created`... */
  eventName: string;
  etag?: string;
  size?: number;
  versionId?: string;
  /** S3's per-key ordering token (hex); absent on events that do not carry one. */
  sequencer?: string;
  eventTime?: string;
}

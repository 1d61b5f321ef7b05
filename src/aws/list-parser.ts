/** One object of a listing page: the fields a sync decides on. */
export interface ListedObject {
  key: string;
  size: number;
  /** Without the surrounding quotes. */
  etag: string;
  lastModified: Date;
  /** As S3 names it (STANDARD, GLACIER, DEEP_ARCHIVE...); absent when the endpoint does not say. */
  storageClass?: string;
  /**
   * From the listing's RestoreStatus (asked for with x-amz-optional-object-attributes): `restored`
   * while a restored copy of an archived object can be read, `restoring` while a restore runs.
   */
  restore?: 'restored' | 'restoring';
}

export interface ListPage {
  objects: ListedObject[];
  nextToken?: string;
}

const ENTITY = /&(?:#(\d+)|#x([0-9a-fA-F]+)|(amp|lt|gt|quot|apos));/g;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** XML character data to text: the five named entities and numeric references. */
export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(ENTITY, (_, dec: string | undefined, hex: string | undefined, name: string | undefined) =>
    name ? NAMED[name] : String.fromCodePoint(dec ? Number(dec) : parseInt(hex ?? '0', 16)),
  );
}

function field(block: string, tag: string): string | undefined {
  const open = block.indexOf(`<${tag}>`);
  if (open === -1) return undefined;
  const start = open + tag.length + 2;
  const end = block.indexOf(`</${tag}>`, start);
  return end === -1 ? undefined : block.slice(start, end);
}

/** S3 sends ETags in double quotes; the service keeps them bare. */
export function stripQuotes(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

/**
 * The answer is not a whole ListObjectsV2 page. Retryable: a body cut off in transit (a
 * close-delimited answer that ends early) comes whole on the next attempt; it is never taken as
 * the last page, which would make every key after the cut look deleted.
 */
export class ListParseError extends Error {
  readonly retryable = true;
}

/**
 * Parses a ListObjectsV2 answer. The SDK's schema-driven deserializer costs about 20 us a key,
 * which is most of a no-op re-sync; this reads the few fields a sync needs in one pass.
 */
export function parseListObjectsV2(xml: string): ListPage {
  if (!xml.includes('<ListBucketResult')) throw new ListParseError('not a ListBucketResult document');
  if (!/<\/ListBucketResult>\s*$/.test(xml)) throw new ListParseError('the listing ends before </ListBucketResult> (cut off)');
  const objects: ListedObject[] = [];
  let from = 0;
  for (;;) {
    const open = xml.indexOf('<Contents>', from);
    if (open === -1) break;
    const close = xml.indexOf('</Contents>', open);
    if (close === -1) throw new ListParseError('unterminated <Contents>');
    const block = xml.slice(open + 10, close);
    const key = field(block, 'Key');
    const size = field(block, 'Size');
    const lastModified = field(block, 'LastModified');
    if (key === undefined || size === undefined || lastModified === undefined) {
      throw new ListParseError('a <Contents> entry lacks Key, Size or LastModified');
    }
    const object: ListedObject = {
      key: decodeXmlText(key),
      size: Number(size),
      etag: stripQuotes(decodeXmlText(field(block, 'ETag') ?? '')),
      lastModified: new Date(lastModified),
    };
    const storageClass = field(block, 'StorageClass');
    if (storageClass !== undefined && storageClass !== 'STANDARD') {
      object.storageClass = storageClass;
      const restoring = field(block, 'IsRestoreInProgress');
      if (restoring !== undefined) object.restore = restoring === 'true' ? 'restoring' : 'restored';
    }
    objects.push(object);
    from = close + 11;
  }
  // Only the document's own fields, outside every <Contents>, decide whether more pages follow.
  const tail = xml.slice(from);
  const head = xml.slice(0, xml.indexOf('<Contents>') === -1 ? xml.length : xml.indexOf('<Contents>'));
  const isTruncated = field(head, 'IsTruncated') ?? field(tail, 'IsTruncated');
  if (isTruncated !== 'true' && isTruncated !== 'false') throw new ListParseError('the listing says neither IsTruncated true nor false');
  const truncated = isTruncated === 'true';
  const token = field(head, 'NextContinuationToken') ?? field(tail, 'NextContinuationToken');
  if (truncated && !token) throw new ListParseError('a truncated listing without NextContinuationToken');
  return { objects, nextToken: truncated ? decodeXmlText(token!) : undefined };
}

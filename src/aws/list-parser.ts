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

/** `<tag>` and `</tag>` as bytes, made once per tag. */
const TAGS = new Map<string, { open: Buffer; close: Buffer }>();
function tag(name: string): { open: Buffer; close: Buffer } {
  let t = TAGS.get(name);
  if (!t) TAGS.set(name, (t = { open: Buffer.from(`<${name}>`), close: Buffer.from(`</${name}>`) }));
  return t;
}

/**
 * The text of the first `<tag>` element in `block`, decoded from UTF-8: a string of its own, which
 * keeps no reference to the page (a slice of one string would keep the whole page's text alive,
 * and with it every page whose keys outlive two young-generation collections).
 */
function field(block: Buffer, name: string): string | undefined {
  const { open, close } = tag(name);
  const at = block.indexOf(open);
  if (at === -1) return undefined;
  const start = at + open.length;
  const end = block.indexOf(close, start);
  return end === -1 ? undefined : block.toString('utf8', start, end);
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

const ENDS_THE_DOCUMENT = /<\/ListBucketResult>\s*$/;

/**
 * Parses a ListObjectsV2 answer, from its bytes. The SDK's schema-driven deserializer costs about 20 us a key,
 * which is most of a no-op re-sync; this reads the few fields a sync needs in one pass.
 */
export function parseListObjectsV2(body: Buffer | string): ListPage {
  const xml = typeof body === 'string' ? Buffer.from(body) : body;
  if (!xml.includes('<ListBucketResult')) throw new ListParseError('not a ListBucketResult document');
  if (!ENDS_THE_DOCUMENT.test(xml.toString('latin1', Math.max(0, xml.length - 64)))) {
    throw new ListParseError('the listing ends before </ListBucketResult> (cut off)');
  }
  const objects: ListedObject[] = [];
  const { open: contentsOpen, close: contentsClose } = tag('Contents');
  const first = xml.indexOf(contentsOpen);
  let from = 0;
  for (;;) {
    const open = xml.indexOf(contentsOpen, from);
    if (open === -1) break;
    const close = xml.indexOf(contentsClose, open);
    if (close === -1) throw new ListParseError('unterminated <Contents>');
    const block = xml.subarray(open + contentsOpen.length, close);
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
    from = close + contentsClose.length;
  }
  // Only the document's own fields, outside every <Contents>, decide whether more pages follow.
  const tail = xml.subarray(from);
  const head = xml.subarray(0, first === -1 ? xml.length : first);
  const isTruncated = field(head, 'IsTruncated') ?? field(tail, 'IsTruncated');
  if (isTruncated !== 'true' && isTruncated !== 'false') throw new ListParseError('the listing says neither IsTruncated true nor false');
  const truncated = isTruncated === 'true';
  const token = field(head, 'NextContinuationToken') ?? field(tail, 'NextContinuationToken');
  if (truncated && !token) throw new ListParseError('a truncated listing without NextContinuationToken');
  return { objects, nextToken: truncated ? decodeXmlText(token!) : undefined };
}

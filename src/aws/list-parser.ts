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

/**
 * A copy of `text` that shares no memory with the string it was cut from. V8 makes a slice of 13
 * characters or more a view into its parent, so a key sliced from a page's text would keep the
 * whole page (~250 KB) alive for as long as the key lives, in the old generation once it has
 * outlived two young-generation collections. Joining forces a flat copy, of which the slice is
 * a view.
 */
function ownString(text: string): string {
  return (' ' + text).slice(1);
}

/** The text between `<name>` and `</name>` of the first such element in xml[from, to). */
function field(xml: string, name: string, from: number, to: number): string | undefined {
  const open = `<${name}>`;
  const at = xml.indexOf(open, from);
  if (at === -1 || at >= to) return undefined;
  const start = at + open.length;
  const end = xml.indexOf(`</${name}>`, start);
  return end === -1 || end > to ? undefined : xml.slice(start, end);
}

/** S3 sends ETags in double quotes; the service keeps them bare. */
export function stripQuotes(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

/** S3 writes an ETag's quotes as `&quot;`: taken off directly (0.05 us an entry; the entity decoder and stripQuotes cost 1.7 us). */
function etagOf(raw: string): string {
  const inner = raw.length >= 12 && raw.startsWith('&quot;') && raw.endsWith('&quot;') ? raw.slice(6, -6) : undefined;
  return inner !== undefined && !inner.includes('&') ? inner : stripQuotes(decodeXmlText(raw));
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
 * Parses a ListObjectsV2 answer. The SDK's schema-driven deserializer costs about 20 us a key, which
 * is most of a no-op re-sync; this reads the few fields a sync needs in one pass over the page's
 * text, with the strings a caller keeps copied out of it (ownString).
 */
export function parseListObjectsV2(body: Buffer | string): ListPage {
  const xml = typeof body === 'string' ? body : body.toString('utf8');
  if (!xml.includes('<ListBucketResult')) throw new ListParseError('not a ListBucketResult document');
  if (!ENDS_THE_DOCUMENT.test(xml.slice(Math.max(0, xml.length - 64)))) {
    throw new ListParseError('the listing ends before </ListBucketResult> (cut off)');
  }
  const objects: ListedObject[] = [];
  const first = xml.indexOf('<Contents>');
  let from = 0;
  for (;;) {
    const open = xml.indexOf('<Contents>', from);
    if (open === -1) break;
    const close = xml.indexOf('</Contents>', open);
    if (close === -1) throw new ListParseError('unterminated <Contents>');
    const key = field(xml, 'Key', open, close);
    const size = field(xml, 'Size', open, close);
    const lastModified = field(xml, 'LastModified', open, close);
    if (key === undefined || size === undefined || lastModified === undefined) {
      throw new ListParseError('a <Contents> entry lacks Key, Size or LastModified');
    }
    const object: ListedObject = {
      key: ownString(decodeXmlText(key)),
      size: Number(size),
      etag: ownString(etagOf(field(xml, 'ETag', open, close) ?? '')),
      lastModified: new Date(lastModified),
    };
    const storageClass = field(xml, 'StorageClass', open, close);
    if (storageClass !== undefined && storageClass !== 'STANDARD') {
      object.storageClass = ownString(storageClass);
      const restoring = field(xml, 'IsRestoreInProgress', open, close);
      if (restoring !== undefined) object.restore = restoring === 'true' ? 'restoring' : 'restored';
    }
    objects.push(object);
    from = close + '</Contents>'.length;
  }
  // Only the document's own fields, outside every <Contents>, decide whether more pages follow.
  const headEnd = first === -1 ? xml.length : first;
  const document = (name: string): string | undefined => field(xml, name, 0, headEnd) ?? field(xml, name, from, xml.length);
  const isTruncated = document('IsTruncated');
  if (isTruncated !== 'true' && isTruncated !== 'false') throw new ListParseError('the listing says neither IsTruncated true nor false');
  const truncated = isTruncated === 'true';
  const token = document('NextContinuationToken');
  if (truncated && !token) throw new ListParseError('a truncated listing without NextContinuationToken');
  return { objects, nextToken: truncated ? ownString(decodeXmlText(token!)) : undefined };
}

import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isRetryable } from '../common/retryable';
import { decodeXmlText, ListParseError, parseListObjectsV2 } from './list-parser';

const entry = (key: string, size = 1, etag = '&quot;abc&quot;', at = '2026-11-23T10:00:00.000Z'): string =>
  `<Contents><Key>${key}</Key><LastModified>${at}</LastModified><ETag>${etag}</ETag><Size>${size}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
const doc = (body: string, tail = '<IsTruncated>false</IsTruncated>'): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>${tail}${body}</ListBucketResult>`;

describe('parseListObjectsV2', () => {
  it('reads keys, sizes, ETags without quotes and dates', () => {
    const page = parseListObjectsV2(doc(entry('a/b.txt', 42, '"9e107d9d372bb6826bd81d3542a419d6"') + entry('c', 0, '&quot;x-2&quot;')));
    expect(page).toEqual({
      objects: [
        { key: 'a/b.txt', size: 42, etag: '9e107d9d372bb6826bd81d3542a419d6', lastModified: new Date('2026-11-23T10:00:00.000Z') },
        { key: 'c', size: 0, etag: 'x-2', lastModified: new Date('2026-11-23T10:00:00.000Z') },
      ],
      nextToken: undefined,
    });
  });

  it('records storage classes other than STANDARD, and whether an archived object is restored', () => {
    const archived = (key: string, storageClass: string, restore = ''): string =>
      `<Contents><Key>${key}</Key><LastModified>2026-11-23T10:00:00.000Z</LastModified><ETag>"e"</ETag><Size>1</Size><StorageClass>${storageClass}</StorageClass>${restore}</Contents>`;
    const page = parseListObjectsV2(
      doc(
        entry('standard') +
          archived('cold', 'GLACIER') +
          archived('thawing', 'DEEP_ARCHIVE', '<RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus>') +
          archived(
            'thawed',
            'GLACIER',
            '<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress><RestoreExpiryDate>2026-12-10T00:00:00.000Z</RestoreExpiryDate></RestoreStatus>',
          ) +
          archived('ia', 'STANDARD_IA'),
      ),
    );
    expect(page.objects.map(({ key, storageClass, restore }) => ({ key, storageClass, restore }))).toEqual([
      { key: 'standard', storageClass: undefined, restore: undefined },
      { key: 'cold', storageClass: 'GLACIER', restore: undefined },
      { key: 'thawing', storageClass: 'DEEP_ARCHIVE', restore: 'restoring' },
      { key: 'thawed', storageClass: 'GLACIER', restore: 'restored' },
      { key: 'ia', storageClass: 'STANDARD_IA', restore: undefined },
    ]);
    expect(page.objects[0]).not.toHaveProperty('storageClass');
  });

  it('decodes escaped and non-ASCII keys exactly', () => {
    const keys = ['a&amp;b', 'x&lt;y&gt;z', 'q&quot;u&apos;o', 'tab&#9;here', 'hex&#x41;', 'café/日本/😀', 'plus+space %20.txt'];
    const page = parseListObjectsV2(doc(keys.map((k) => entry(k)).join('')));
    expect(page.objects.map((o) => o.key)).toEqual(['a&b', 'x<y>z', 'q"u\'o', 'tab\there', 'hexA', 'café/日本/😀', 'plus+space %20.txt']);
  });

  it('returns the continuation token of a truncated page, wherever the element stands', () => {
    const token = '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=';
    expect(
      parseListObjectsV2(doc(entry('k'), `<IsTruncated>true</IsTruncated><NextContinuationToken>${token}</NextContinuationToken>`))
        .nextToken,
    ).toBe(token);
    const after = `<ListBucketResult>${entry('k')}<IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;1</NextContinuationToken></ListBucketResult>`;
    expect(parseListObjectsV2(after).nextToken).toBe('t&1');
  });

  it('is not fooled by a key that looks like a field', () => {
    const page = parseListObjectsV2(doc(entry('&lt;IsTruncated&gt;true&lt;/IsTruncated&gt;')));
    expect(page.nextToken).toBeUndefined();
    expect(page.objects[0].key).toBe('<IsTruncated>true</IsTruncated>');
  });

  it('returns keys and ETags that keep no page alive', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pageOf = (n: number): Buffer =>
      Buffer.from(
        doc(Array.from({ length: 1000 }, (_, i) => entry(`folder-${n}/a-long-enough-key-${i}.json`, 1, `"${'e'.repeat(32)}"`)).join('')),
      );
    const kept: { key: string; etag: string }[] = [];
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let n = 0; n < 200; n++) {
      const { key, etag } = parseListObjectsV2(pageOf(n)).objects[999];
      kept.push({ key, etag });
    }
    gc();
    // 200 pages of about 130 KB each: a kept slice would hold 26 MB.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(4 * 1024 * 1024);
    expect(kept[199]).toEqual({ key: 'folder-199/a-long-enough-key-999.json', etag: 'e'.repeat(32) });
  });

  it('handles an empty listing', () => {
    expect(parseListObjectsV2(doc(''))).toEqual({ objects: [], nextToken: undefined });
  });

  it.each([
    ['<Error><Code>AccessDenied</Code></Error>', /not a ListBucketResult/],
    [doc('<Contents><Key>a</Key>'), /unterminated/],
    [doc('<Contents><Key>a</Key></Contents>'), /lacks/],
    [doc(entry('a'), '<IsTruncated>true</IsTruncated>'), /without NextContinuationToken/],
    // Cut off in transit: never the last page.
    [doc(entry('a') + entry('b')).slice(0, -'</ListBucketResult>'.length), /cut off/],
    [doc(entry('a')).slice(0, doc(entry('a')).indexOf('<Contents>') + 40), /cut off|unterminated/],
    [doc(entry('a'), ''), /neither IsTruncated/],
  ])('rejects a malformed document', (xml, message) => {
    expect(() => parseListObjectsV2(xml)).toThrow(ListParseError);
    expect(() => parseListObjectsV2(xml)).toThrow(message);
  });

  it('says a malformed page is worth another attempt', () => {
    expect(isRetryable(new ListParseError('cut off'))).toBe(true);
  });
});

describe('decodeXmlText', () => {
  it('leaves text without entities alone and decodes references', () => {
    expect(decodeXmlText('plain')).toBe('plain');
    expect(decodeXmlText('&#128512;&#x1F600;&amp;amp;')).toBe('😀😀&amp;');
  });
});

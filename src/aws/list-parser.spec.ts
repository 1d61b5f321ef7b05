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

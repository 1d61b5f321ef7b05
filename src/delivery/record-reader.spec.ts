import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { formatOf, ParsedLine, readRecords } from './record-reader';

async function all(data: Buffer | string, format: 'jsonl' | 'text', chunk = 7): Promise<ParsedLine[]> {
  const buf = Buffer.from(data);
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  const out: ParsedLine[] = [];
  for await (const batch of readRecords(Readable.from(chunks), format)) out.push(...batch);
  return out;
}

describe('readRecords', () => {
  it('reads JSON Lines, skipping blank lines and keeping line numbers, CRLF included', async () => {
    expect(await all('{"a":1}\r\n\n  [1,2] \n"s"\n42', 'jsonl')).toEqual([
      { line: 1, json: '{"a":1}' },
      { line: 3, json: '[1,2]' },
      { line: 4, json: '"s"' },
      { line: 5, json: '42' },
    ]);
  });

  it('turns an invalid line into an error with its number, and goes on', async () => {
    const out = await all('{"ok":1}\n{"broken":\n{"ok":2}\n', 'jsonl');
    expect(out[0]).toEqual({ line: 1, json: '{"ok":1}' });
    expect(out[1]).toEqual({ line: 2, error: expect.stringContaining('invalid JSON'), raw: '{"broken":' });
    expect(out[2]).toEqual({ line: 3, json: '{"ok":2}' });
  });

  it('reads text lines as JSON strings, non-ASCII and quotes intact', async () => {
    expect(await all('hello "world"\n\nété ✓\n', 'text')).toEqual([
      { line: 1, json: '"hello \\"world\\""' },
      { line: 3, json: '"été ✓"' },
    ]);
  });

  it('decompresses gzip content, whatever the name says', async () => {
    const data = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ i })).join('\n');
    const out = await all(gzipSync(data), 'jsonl', 100);
    expect(out).toHaveLength(1000);
    expect(out[999]).toEqual({ line: 1000, json: '{"i":999}' });
  });

  it('splits lines across chunk boundaries, multi-byte characters included', async () => {
    const text = 'ééé\n{"k":"日本語"}\n' + '"x"\n'.repeat(50);
    for (const chunk of [1, 2, 3, 5]) {
      const out = await all(text, 'jsonl', chunk);
      expect(out.slice(0, 2)).toEqual([
        { line: 1, error: expect.stringContaining('invalid JSON'), raw: 'ééé' },
        { line: 2, json: '{"k":"日本語"}' },
      ]);
      expect(out).toHaveLength(52);
    }
  });

  it('reports an overlong line and goes on with the next', async () => {
    const out: ParsedLine[] = [];
    const data = `${'"'.padEnd(100, 'a')}"\n{"ok":true}\n`;
    for await (const batch of readRecords(Readable.from([Buffer.from(data)]), 'jsonl', 50)) out.push(...batch);
    expect(out).toEqual([
      { line: 1, error: 'line longer than 50 bytes', raw: expect.any(String) },
      { line: 2, json: '{"ok":true}' },
    ]);
  });

  it('reads an empty file as no records', async () => {
    expect(await all('', 'jsonl')).toEqual([]);
  });

  it('tells the format from the name', () => {
    expect(formatOf('a/b.jsonl')).toBe('jsonl');
    expect(formatOf('a/b.NDJSON.gz')).toBe('jsonl');
    expect(formatOf('a/b.json')).toBe('jsonl');
    expect(formatOf('a/b.txt.gz')).toBe('text');
    expect(formatOf('a/b.log')).toBe('text');
  });
});

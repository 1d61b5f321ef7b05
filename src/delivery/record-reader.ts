/**
 * Records out of a committed file, streamed: memory stays flat whatever the file's size. JSON Lines
 * (each non-empty line one JSON value) or plain text (each non-empty line one string), either of
 * them gzip-compressed (a `.gz` name, or the gzip magic bytes, as S3 objects stored with
 * Content-Encoding: gzip have). Each record comes out already serialised as JSON, so that a batch
 * body is built by joining strings instead of parsing and stringifying twice.
 */
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

export type RecordFormat = 'jsonl' | 'text';

export type ParsedLine =
  | { line: number; json: string }
  /** A line that is not a record: it becomes a dead letter with its number and reason. */
  | { line: number; error: string; raw: string };

const JSONL = /\.(jsonl|ndjson|json)$/i;

/** The format a key's name tells (after dropping `.gz`): JSON Lines for .jsonl/.ndjson/.json, else text. */
export function formatOf(key: string): RecordFormat {
  return JSONL.test(key.replace(/\.gz$/i, '')) ? 'jsonl' : 'text';
}

/** A stream with the gzip layer removed when the content starts with the gzip magic bytes. */
export async function decompressed(source: Readable): Promise<Readable> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iterator.next();
  const out = new PassThrough();
  if (first.done) {
    out.end();
    return out;
  }
  const head: Buffer = first.value;
  const rest = Readable.from(
    (async function* () {
      yield head;
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield r.value;
    })(),
    { objectMode: false },
  );
  const gzipped = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  return gzipped ? rest.pipe(createGunzip()) : rest;
}

/**
 * The records of a stream, a chunk's worth at a time: one array per chunk read, so that the cost of
 * async iteration is paid per chunk, not per record (it dominated delivery with one yield a line).
 * Lines are found on the bytes: a newline byte never occurs inside a multi-byte UTF-8 sequence, so
 * each line is decoded once, on its own, and its length in bytes is known without measuring.
 */
export async function* readRecords(source: Readable, format: RecordFormat, maxLineBytes = 16 * 1024 * 1024): AsyncGenerator<ParsedLine[]> {
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let overlong = false;
  let line = 0;
  const parse = (buf: Buffer, start: number, end: number, out: ParsedLine[]): void => {
    line++;
    if (overlong || end - start > maxLineBytes) {
      out.push({
        line,
        error: `line longer than ${maxLineBytes} bytes`,
        raw: buf.toString('utf8', start, Math.min(end, start + 1024)).trim(),
      });
      overlong = false;
      return;
    }
    const text = buf.toString('utf8', start, end).trim();
    if (text === '') return;
    if (format === 'text') {
      out.push({ line, json: JSON.stringify(text) });
      return;
    }
    try {
      JSON.parse(text);
      out.push({ line, json: text });
    } catch (err) {
      out.push({ line, error: `invalid JSON: ${(err as Error).message}`, raw: text });
    }
  };
  for await (const chunk of await decompressed(source)) {
    const buf = chunk as Buffer;
    const out: ParsedLine[] = [];
    let start = 0;
    let nl = buf.indexOf(10);
    if (nl !== -1 && carryBytes > 0) {
      // The line that began in earlier chunks: the only bytes ever copied.
      const joined = overlong ? Buffer.alloc(0) : Buffer.concat([...carry, buf.subarray(0, nl)]);
      parse(joined, 0, joined.length, out);
      carry = [];
      carryBytes = 0;
      start = nl + 1;
      nl = buf.indexOf(10, start);
    }
    for (; nl !== -1; nl = buf.indexOf(10, start)) {
      parse(buf, start, nl, out);
      start = nl + 1;
    }
    if (start < buf.length) {
      carryBytes += buf.length - start;
      // A line with no end in sight is not kept whole: it is reported when its end comes.
      if (carryBytes > maxLineBytes) {
        overlong = true;
        carry = [];
      } else {
        carry.push(buf.subarray(start));
      }
    }
    if (out.length > 0) yield out;
  }
  if (carryBytes > 0) {
    const out: ParsedLine[] = [];
    const rest = overlong ? Buffer.alloc(0) : Buffer.concat(carry);
    parse(rest, 0, rest.length, out);
    if (out.length > 0) yield out;
  }
}

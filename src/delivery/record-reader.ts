/**
 * Records out of a committed file, streamed: memory stays flat whatever the file's size. JSON Lines
 * (each non-empty line one JSON value) or plain text (each non-empty line one string), either of
 * them gzip-compressed (a `.gz` name, or the gzip magic bytes, as S3 objects stored with
 * Content-Encoding: gzip have). Each record comes out already serialised as JSON, so that a batch
 * body is built by joining strings instead of parsing and stringifying twice.
 */
import { PassThrough, Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
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
 * async iteration is paid per 64 KiB, not per record (it dominated delivery with one yield a line).
 */
export async function* readRecords(source: Readable, format: RecordFormat, maxLineBytes = 16 * 1024 * 1024): AsyncGenerator<ParsedLine[]> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let line = 0;
  const parse = (text: string, out: ParsedLine[]): void => {
    line++;
    const trimmed = text.trim();
    if (trimmed === '') return;
    if (trimmed.length > maxLineBytes || Buffer.byteLength(trimmed) > maxLineBytes) {
      out.push({ line, error: `line longer than ${maxLineBytes} bytes`, raw: trimmed.slice(0, 1024) });
    } else if (format === 'text') {
      out.push({ line, json: JSON.stringify(trimmed) });
    } else {
      try {
        JSON.parse(trimmed);
        out.push({ line, json: trimmed });
      } catch (err) {
        out.push({ line, error: `invalid JSON: ${(err as Error).message}`, raw: trimmed });
      }
    }
  };
  for await (const chunk of await decompressed(source)) {
    const text = carry + decoder.write(chunk as Buffer);
    const out: ParsedLine[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      parse(text.slice(start, nl), out);
      start = nl + 1;
    }
    carry = text.slice(start);
    if (carry.length > maxLineBytes * 2) {
      // A line with no end in sight: report it and skip to the next newline.
      out.push({ line: ++line, error: `line longer than ${maxLineBytes} bytes`, raw: carry.slice(0, 1024) });
      carry = '';
      line--;
    }
    if (out.length > 0) yield out;
  }
  const rest = carry + decoder.end();
  if (rest !== '') {
    const out: ParsedLine[] = [];
    parse(rest, out);
    if (out.length > 0) yield out;
  }
}

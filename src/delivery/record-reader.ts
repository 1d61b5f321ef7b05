/**
 * Records out of a committed file, streamed: memory stays flat whatever the file's size. JSON Lines
 * (each non-empty line one JSON value) or plain text (each non-empty line one string), either of
 * them gzip-compressed (a `.gz` name, or the gzip magic bytes, as S3 objects stored with
 * Content-Encoding: gzip have). Each record comes out already serialised as JSON, so that a batch
 * body is built by joining strings instead of parsing and stringifying twice.
 */
import { createInterface } from 'node:readline';
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

export async function* readRecords(source: Readable, format: RecordFormat, maxLineBytes = 16 * 1024 * 1024): AsyncGenerator<ParsedLine> {
  const lines = createInterface({ input: await decompressed(source), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    const trimmed = text.trim();
    if (trimmed === '') continue;
    if (Buffer.byteLength(trimmed) > maxLineBytes) {
      yield { line, error: `line longer than ${maxLineBytes} bytes`, raw: trimmed.slice(0, 1024) };
      continue;
    }
    if (format === 'text') {
      yield { line, json: JSON.stringify(trimmed) };
      continue;
    }
    try {
      JSON.parse(trimmed);
      yield { line, json: trimmed };
    } catch (err) {
      yield { line, error: `invalid JSON: ${(err as Error).message}`, raw: trimmed };
    }
  }
}

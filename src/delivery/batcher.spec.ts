import { Batch, batchBody, Batcher, ENVELOPE_BYTES } from './batcher';

function drain(b: Batcher, records: string[]): Batch[] {
  const out: Batch[] = [];
  records.forEach((r, i) => {
    const done = b.add(r, i + 1);
    if (done) out.push(done);
  });
  const last = b.flush();
  if (last) out.push(last);
  return out;
}

describe('Batcher', () => {
  it('cuts batches by count, numbered from 0 in order, with their line range', () => {
    const batches = drain(
      new Batcher(500, 1 << 20),
      Array.from({ length: 1234 }, (_, i) => `{"n":${i}}`),
    );
    expect(batches.map((b) => [b.batchNo, b.records.length, b.firstLine, b.lastLine])).toEqual([
      [0, 500, 1, 500],
      [1, 500, 501, 1000],
      [2, 234, 1001, 1234],
    ]);
  });

  it('cuts batches by bytes, envelope included, never beyond the limit', () => {
    const record = `"${'x'.repeat(98)}"`; // 100 bytes
    const max = ENVELOPE_BYTES + 100 * 3 + 2; // three records and two commas
    const batches = drain(
      new Batcher(1000, max),
      Array.from({ length: 10 }, () => record),
    );
    expect(batches.map((b) => b.records.length)).toEqual([3, 3, 3, 1]);
    for (const b of batches) expect(Buffer.byteLength(batchBody(b, '2026-11-23T10:00:00.000Z'))).toBeLessThanOrEqual(max);
  });

  it('handles a batch size of one', () => {
    expect(drain(new Batcher(1, 1 << 20), ['1', '2', '3']).map((b) => b.records)).toEqual([['1'], ['2'], ['3']]);
  });

  it('tells a record too large for any batch', () => {
    const b = new Batcher(10, 1000);
    expect(b.fits(1000 - ENVELOPE_BYTES)).toBe(true);
    expect(b.fits(1001 - ENVELOPE_BYTES)).toBe(false);
  });

  it('builds the body downstream expects', () => {
    const body = batchBody(
      { batchNo: 0, records: ['{"a":1}', '"text line"'], bytes: 0, firstLine: 1, lastLine: 2 },
      '2026-11-23T10:00:00.000Z',
    );
    expect(JSON.parse(body)).toEqual({ records: [{ a: 1 }, 'text line'], timestamp: '2026-11-23T10:00:00.000Z', batchSize: 2 });
  });
});

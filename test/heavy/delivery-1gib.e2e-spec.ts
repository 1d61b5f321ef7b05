import { Upload } from '@aws-sdk/lib-storage';
import { readFileSync } from 'node:fs';
import { eventually } from '../support/app';
import { bigGzippedJsonl, serviceEnv } from '../support/delivery';
import { FakeDownstream } from '../support/fake-downstream';
import { startService } from '../support/process';
import { newBucket, testS3 } from '../support/s3';

describe('delivery of a 1 GiB file', () => {
  it('delivers every record of a 1 GiB JSON Lines file (gzip) once, without holding the file in memory', async () => {
    const s3 = testS3();
    const bucket = await newBucket(s3);
    const down = await new FakeDownstream().start();
    down.summariseOnly = true;
    const GiB = 1024 * 1024 * 1024;
    const { body, records } = await bigGzippedJsonl(GiB);
    // Multipart: the emulator refuses a single PUT of this size.
    await new Upload({ client: s3, params: { Bucket: bucket, Key: 'cdr/day.jsonl.gz', Body: body }, partSize: 8 * 1024 * 1024 }).done();
    const service = await startService({ ...serviceEnv(bucket, down, 'gib'), MAX_FILE_SIZE_MB: '0' });
    try {
      const batches = Math.ceil(records / 500);
      await eventually(
        () => down.batches.size,
        (n) => n === batches,
        240_000,
        `${batches} batches delivered`,
      );
      expect(down.totals()).toEqual({ records, sumOfN: (records * (records - 1)) / 2 });
      expect(down.duplicates()).toBe(0);
      // Streaming, not buffering: the peak is a fraction of the file (the figures are in bench/delivery.mjs).
      const peakKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${service.child.pid}/status`, 'utf8'))![1]);
      expect(peakKiB * 1024).toBeLessThan(GiB / 3);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
      await down.stop();
      s3.destroy();
    }
  }, 300_000);
});

import { S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHandler } from '../lambda/src/handler';
import { signWebhook } from '../src/auth/webhook-signature';
import { bootApp, eventually, filesUnder, TestApp, tempDir } from './support/app';
import { startService } from './support/process';
import { EventSpec, notification, sequencers, signedPost, testEvent } from './support/s3-events';
import { S3Proxy } from './support/s3-proxy';
import { contentFor, emulatorEndpoint, newBucket, put, remove, testS3 } from './support/s3';

const SECRET = 'events-e2e-webhook-secret';
const API_KEY = 'an-api-key-for-these-tests';
const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

const signed = (t: TestApp, body: unknown, secret = SECRET, nowMs = Date.now()) => signedPost(t, secret, body, nowMs);

async function stats(t: TestApp): Promise<{
  events: { accepted: number; pending: number; parked: number; dead: number; inFlight: number; applied: Record<string, number> };
}> {
  return (await t.http().get('/api/v1/stats').set('x-api-key', API_KEY).expect(200)).body;
}

const settled = (t: TestApp) =>
  eventually(
    () => stats(t),
    (s) => s.events.pending === 0 && s.events.inFlight === 0,
    15_000,
    'events applied',
  );

describe('real-time sync through the webhook', () => {
  let s3: S3Client;
  let bucket: string;
  let t: TestApp;

  beforeEach(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
    t = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint(), WEBHOOK_SECRET: SECRET, API_KEY });
  });
  afterEach(async () => {
    await t.close();
    s3.destroy();
  });

  /** A second service on the same bucket with settings of its own, closed whatever the test does. */
  const withApp = async (env: Record<string, string>, test: (app: TestApp) => Promise<void>): Promise<void> => {
    const app = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint(), WEBHOOK_SECRET: SECRET, ...env });
    try {
      await test(app);
    } finally {
      await app.close();
    }
  };

  const putEvent = async (key: string, body: Buffer | string, sequencer?: string): Promise<EventSpec> => {
    await put(s3, bucket, key, body);
    return { bucket, key, op: 'put', size: Buffer.byteLength(body), etag: md5(body), sequencer };
  };

  it('the Lambda forwarder delivers S3 events and the mirror follows, for keys with spaces, +, % and non-ASCII', async () => {
    await t.app.listen(0, '127.0.0.1');
    const url = await t.app.getUrl();
    const forward = createHandler(
      { apiEndpoint: url.replace('[::1]', '127.0.0.1'), webhookSecret: SECRET, timeoutMs: 5000, retryAttempts: 2 },
      { log: () => undefined },
    );
    const keys = ['in/plain.jsonl', 'in/with space.txt', 'in/c++ a+b.txt', 'in/100% sure.txt', 'in/données/été.jsonl'];
    const seq = sequencers(keys.length);
    const events = await Promise.all(keys.map((k, i) => putEvent(k, contentFor(k, 100 + i), seq[i])));
    const context = { getRemainingTimeInMillis: () => 30_000, awsRequestId: 'e2e' };
    await expect(forward(notification(...events), context)).resolves.toEqual({ forwarded: true });
    await settled(t);
    expect(await filesUnder(t.mirrorDir)).toEqual([...keys].sort());
    for (const [i, k] of keys.entries()) expect(await readFile(join(t.mirrorDir, k))).toEqual(contentFor(k, 100 + i));

    // An SQS-triggered invocation: each message forwarded on its own; a delete propagates.
    await remove(s3, bucket, keys[0]);
    const deleteEvent = notification({
      bucket,
      key: keys[0],
      op: 'delete',
      sequencer: sequencers(1, BigInt(`0x${seq[seq.length - 1]}`) + 1n)[0],
    });
    const sqsEvent = { Records: [{ eventSource: 'aws:sqs', messageId: 'm-1', body: JSON.stringify(deleteEvent) }] };
    await expect(forward(sqsEvent, context)).resolves.toEqual({ batchItemFailures: [] });
    await settled(t);
    expect(await filesUnder(t.mirrorDir)).not.toContain(keys[0]);
  });

  it('applies reordered and duplicated events once, ending in the state of the newest', async () => {
    const [s1, s2, s3q] = sequencers(3);
    // overwritten: v1 then v2; events arrive v2, v1, v2 again.
    const v1 = await putEvent('o/overwritten.txt', 'version one', s1);
    const v2 = await putEvent('o/overwritten.txt', 'version two!', s2);
    // created then deleted: the delete arrives first.
    const born = await putEvent('o/deleted.txt', 'short-lived', s1);
    await remove(s3, bucket, 'o/deleted.txt');
    const died: EventSpec = { bucket, key: 'o/deleted.txt', op: 'delete', sequencer: s2 };
    // deleted then created again: events arrive newest first.
    await put(s3, bucket, 'o/reborn.txt', 'first');
    const first: EventSpec = { bucket, key: 'o/reborn.txt', op: 'put', size: 5, etag: md5('first'), sequencer: s1 };
    const gone: EventSpec = { bucket, key: 'o/reborn.txt', op: 'delete', sequencer: s2 };
    const again = await putEvent('o/reborn.txt', 'second life', s3q);

    const res = await signed(t, notification(v2, died, again, v1, born, gone, first, v2)).expect(202);
    expect(res.body).toMatchObject({ accepted: 8, ignored: 0, rejected: 0 });
    await settled(t);
    expect(await filesUnder(t.mirrorDir)).toEqual(['o/overwritten.txt', 'o/reborn.txt']);
    expect(await readFile(join(t.mirrorDir, 'o/overwritten.txt'), 'utf8')).toBe('version two!');
    expect(await readFile(join(t.mirrorDir, 'o/reborn.txt'), 'utf8')).toBe('second life');
    const { events } = await stats(t);
    // The early delete found nothing mirrored to remove, and its sequencer still made the create stale.
    expect(events.applied).toMatchObject({ downloaded: 2, deleted: 0, unchanged: 1, stale: 5 });

    // A duplicate sent again later is recognised too.
    await signed(t, notification(v2)).expect(202);
    await settled(t);
    expect((await stats(t)).events.applied.stale).toBe(6);
  });

  it('writes a new file into a folder while the delete of its last file prunes that folder', async () => {
    const dirs = Array.from({ length: 40 }, (_, i) => `race/${i}`);
    const [s1, s2] = sequencers(2);
    for (const d of dirs) await put(s3, bucket, `${d}/old.txt`, 'old');
    await signed(
      t,
      notification(...dirs.map((d): EventSpec => ({ bucket, key: `${d}/old.txt`, op: 'put', size: 3, etag: md5('old'), sequencer: s1 }))),
    ).expect(202);
    await settled(t);
    for (const d of dirs) {
      await remove(s3, bucket, `${d}/old.txt`);
      await put(s3, bucket, `${d}/new.txt`, `new ${d}`);
    }
    const changes = dirs.flatMap((d): EventSpec[] => [
      { bucket, key: `${d}/old.txt`, op: 'delete', sequencer: s2 },
      { bucket, key: `${d}/new.txt`, op: 'put', size: Buffer.byteLength(`new ${d}`), sequencer: s2 },
    ]);
    await signed(t, notification(...changes)).expect(202);
    await settled(t);
    expect(await filesUnder(t.mirrorDir)).toEqual(dirs.map((d) => `${d}/new.txt`).sort());
    expect((await stats(t)).events.parked).toBe(0);
  });

  it('refuses forged, stale or unsigned requests with 401 and changes nothing', async () => {
    const ev = await putEvent('f/forged.txt', 'should never appear', sequencers(1)[0]);
    const body = notification(ev);
    const acceptedBefore = (await stats(t)).events.accepted;
    await signed(t, body, 'not-the-right-secret-at-all').expect(401);
    await signed(t, body, SECRET, Date.now() - 6 * 60_000).expect(401);
    const raw = JSON.stringify(body);
    const headers = signWebhook(SECRET, raw, Date.now());
    await t.http().post('/api/v1/s3-notification').set('content-type', 'application/json').send(raw).expect(401);
    const tampered = await t
      .http()
      .post('/api/v1/s3-notification')
      .set('content-type', 'application/json')
      .set(headers)
      .send(raw.replace('forged', 'forgeD'))
      .expect(401);
    expect(tampered.body.message).toContain('signature does not match');
    // The API key is no substitute for the signature.
    await t.http().post('/api/v1/s3-notification').set('x-api-key', API_KEY).send(raw).expect(401);
    // Refused at the guard: nothing was accepted, so nothing can be applied later.
    expect((await stats(t)).events).toMatchObject({ accepted: acceptedBefore, pending: 0, inFlight: 0 });
    expect(await filesUnder(t.mirrorDir)).toEqual([]);
  });

  it('answers an unsigned or stale request 401 before its body arrives', async () => {
    const server = t.app.getHttpServer() as http.Server;
    if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const answerBeforeBody = (headers: Record<string, string>) =>
      new Promise<{ status: number; message: string }>((resolve, reject) => {
        // Announces most of the allowed body and never sends it: only an answer given before reading it can come.
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/api/v1/s3-notification',
            headers: { 'content-type': 'application/json', 'content-length': '900000', ...headers },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, message: (JSON.parse(text) as { message: string }).message }));
          },
        );
        req.on('error', reject);
        // Without an early answer the server waits for the body: fail, and free the connection.
        req.setTimeout(5000, () => req.destroy(new Error('no answer before the body was sent')));
        req.flushHeaders();
      });
    expect(await answerBeforeBody({})).toEqual({ status: 401, message: expect.stringContaining('missing x-s3sync-signature') });
    const stale = signWebhook(SECRET, '{}', Date.now() - 6 * 60_000);
    expect(await answerBeforeBody(stale)).toEqual({ status: 401, message: expect.stringContaining('outside the 300 s window') });
  });

  it('answers 400 for bad JSON or a wrong shape, 413 for a body over the limit, and reports each record', async () => {
    expect((await signed(t, '{"Records": [').expect(400)).body.message).toContain('not valid JSON');
    expect((await signed(t, { hello: 'world' }).expect(400)).body.message).toContain('not an S3 event notification');
    const huge = JSON.stringify({ Records: [], padding: 'x'.repeat(1024 * 1024 + 10) });
    await signed(t, huge).expect(413);

    await signed(t, testEvent(bucket)).expect(202, {
      accepted: 0,
      ignored: 1,
      rejected: 0,
      records: [{ index: 0, status: 'ignored', reason: 's3:TestEvent (sent when notifications are configured)' }],
    });
    const res = await signed(
      t,
      notification(
        { bucket: 'someone-elses-bucket', key: 'k', op: 'put' },
        { bucket, key: '../escape.txt', op: 'put' },
        { bucket, key: 'folder/', op: 'put' },
        { bucket, key: 'r/restoring.txt', op: 'put', eventName: 'ObjectRestore:Post' },
      ),
    ).expect(202);
    expect(res.body.records).toEqual([
      expect.objectContaining({ index: 0, status: 'ignored', reason: expect.stringContaining('someone-elses-bucket') }),
      expect.objectContaining({ index: 1, status: 'rejected', key: '../escape.txt', reason: expect.stringContaining('refused key') }),
      expect.objectContaining({ index: 2, status: 'ignored', reason: expect.stringContaining('folder marker') }),
      expect.objectContaining({ index: 3, status: 'ignored', reason: expect.stringContaining('does not change') }),
    ]);
    await settled(t);
    expect(await filesUnder(join(t.mirrorDir, '..'))).not.toContain('escape.txt');
  });

  it('ignores events outside S3_PREFIX', async () => {
    await withApp({ S3_PREFIX: 'mirrored/' }, async (scoped) => {
      const inside = await putEvent('mirrored/a.txt', 'inside');
      const outside = await putEvent('elsewhere/b.txt', 'outside');
      const res = await signed(scoped, notification(inside, outside)).expect(202);
      expect(res.body.records[1]).toMatchObject({ status: 'ignored', reason: 'key is outside S3_PREFIX "mirrored/"' });
      await settled(scoped);
      expect(await filesUnder(scoped.mirrorDir)).toEqual(['mirrored/a.txt']);
    });
  });

  it('ignores events for keys SYNC_INCLUDE / SYNC_EXCLUDE leave out, and keeps their local files on a delete', async () => {
    await withApp({ SYNC_EXCLUDE: '*.tmp' }, async (filtered) => {
      const wanted = await putEvent('in/a.txt', 'wanted');
      const unwanted = await putEvent('in/b.tmp', 'unwanted');
      await mkdir(join(filtered.mirrorDir, 'in'), { recursive: true });
      await writeFile(join(filtered.mirrorDir, 'in/local.tmp'), 'kept');
      const res = await signed(filtered, notification(wanted, unwanted, { bucket, key: 'in/local.tmp', op: 'delete' })).expect(202);
      expect(res.body).toMatchObject({ accepted: 1, ignored: 2 });
      expect(res.body.records[1]).toMatchObject({ status: 'ignored', reason: 'excluded by SYNC_EXCLUDE pattern "*.tmp"' });
      expect(res.body.records[2]).toMatchObject({ status: 'ignored', reason: 'excluded by SYNC_EXCLUDE pattern "*.tmp"' });
      await settled(filtered);
      expect(await filesUnder(filtered.mirrorDir)).toEqual(['in/a.txt', 'in/local.tmp']);
    });
  });

  it('fetches an object when its restore from an archive class completes (ObjectRestore:Completed)', async () => {
    const restored = { ...(await putEvent('cold/thawed.txt', 'restored bytes')), eventName: 'ObjectRestore:Completed' };
    const started = { ...restored, eventName: 'ObjectRestore:Post' };
    const res = await signed(t, notification(started, restored)).expect(202);
    expect(res.body).toMatchObject({ accepted: 1, ignored: 1 });
    await settled(t);
    expect(await readFile(join(t.mirrorDir, 'cold/thawed.txt'), 'utf8')).toBe('restored bytes');
  });

  it('completes a notification that carries no size or ETag with a HEAD: the object is fetched whole, and the size limit applies', async () => {
    const body = 'a store that tells only the key '.repeat(100);
    const bare = { ...(await putEvent('bare/told.txt', body)), size: null, etag: null };
    await signed(t, notification(bare)).expect(202);
    await settled(t);
    expect(await readFile(join(t.mirrorDir, 'bare/told.txt'), 'utf8')).toBe(body);

    // Under a limit of about 1 KiB, the HEAD's size says the object is too large: nothing is fetched.
    await withApp({ MAX_FILE_SIZE_MB: '0.001' }, async (limited) => {
      await signed(limited, notification(bare)).expect(202);
      await settled(limited);
      expect(await filesUnder(limited.mirrorDir)).toEqual([]);
    });
  });

  it('accepts unsigned notifications with WEBHOOK_AUTH=none, and says so in /config; the files still come from S3', async () => {
    const unsigned = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint(), WEBHOOK_AUTH: 'none' });
    try {
      const ev = await putEvent('u/unsigned.txt', 'from the bucket', sequencers(1)[0]);
      const res = await unsigned
        .http()
        .post('/api/v1/s3-notification')
        .set('content-type', 'application/json')
        .send(JSON.stringify(notification(ev)))
        .expect(202);
      expect(res.body).toMatchObject({ accepted: 1 });
      await eventually(
        () => filesUnder(unsigned.mirrorDir),
        (f) => f.includes('u/unsigned.txt'),
        10_000,
        'the notified file',
      );
      expect(await readFile(join(unsigned.mirrorDir, 'u/unsigned.txt'), 'utf8')).toBe('from the bucket');
      expect((await unsigned.http().get('/api/v1/config').expect(200)).body.events.webhookAuth).toBe('none');
    } finally {
      await unsigned.close();
    }
  });

  it('keeps the webhook closed without WEBHOOK_SECRET', async () => {
    const open = await bootApp({ S3_BUCKET_NAME: bucket, S3_ENDPOINT: emulatorEndpoint() });
    try {
      const res = await signed(open, testEvent(bucket)).expect(503);
      expect(res.body.message).toContain('WEBHOOK_SECRET');
    } finally {
      await open.close();
    }
  });
});

describe('real-time sync from SQS', () => {
  let s3: S3Client;
  let sqs: SQSClient;
  let bucket: string;
  let proxy: S3Proxy;
  let t: TestApp;
  let queueUrl: string;
  let dlqUrl: string;

  beforeEach(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
    sqs = new SQSClient({
      endpoint: emulatorEndpoint(),
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const suffix = randomBytes(4).toString('hex');
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `events-${suffix}` }))).QueueUrl!;
    dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `events-dlq-${suffix}` }))).QueueUrl!;
    proxy = new S3Proxy(emulatorEndpoint());
    const endpoint = await proxy.start();
    t = await bootApp({
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: endpoint,
      SQS_ENDPOINT: emulatorEndpoint(),
      EVENT_QUEUE_URL: queueUrl,
      DLQ_URL: dlqUrl,
      EVENT_QUEUE_WAIT_SECONDS: '1',
      EVENT_QUEUE_VISIBILITY_SECONDS: '2',
      RETRY_ATTEMPTS: '0',
    });
  });
  afterEach(async () => {
    await t.close();
    await proxy.stop();
    s3.destroy();
    sqs.destroy();
  });

  const enqueue = (body: unknown) =>
    sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: typeof body === 'string' ? body : JSON.stringify(body) }));
  const queueDepth = async (url: string): Promise<number> => {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  };

  it('applies queued events, redelivers a failed message while deleting the rest, and dead-letters a poison message', async () => {
    const keys = ['q/one.jsonl', 'q/two words.txt', 'q/flaky.txt'];
    const [s1] = sequencers(1);
    for (const k of keys) await put(s3, bucket, k, contentFor(k, 300));
    // The first delivery of flaky.txt fails (S3 answers 500); the message must come back.
    proxy.fail.set('q/flaky.txt', 1);
    await enqueue(notification({ bucket, key: keys[0], op: 'put', size: 300, sequencer: s1 }));
    await enqueue(notification({ bucket, key: keys[1], op: 'put', size: 300, sequencer: s1 }));
    await enqueue(notification({ bucket, key: keys[2], op: 'put', size: 300, sequencer: s1 }));
    await enqueue('this is not JSON at all');
    await enqueue({ Records: 'nope' });

    // Temporary files may show while a commit is under way: wait for exactly the three files.
    await eventually(
      () => filesUnder(t.mirrorDir),
      (f) => f.join() === [...keys].sort().join(),
      20_000,
      'all three files',
    );
    expect(proxy.objectGets('q/flaky.txt')).toBe(2);
    for (const k of keys) expect(await readFile(join(t.mirrorDir, k))).toEqual(contentFor(k, 300));
    await eventually(
      () => queueDepth(queueUrl),
      (n) => n === 0,
      15_000,
      'source queue drained',
    );

    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }),
    );
    const dead = Messages.map((m) => ({ body: m.Body, reason: m.MessageAttributes?.reason?.StringValue }));
    expect(dead).toEqual(
      expect.arrayContaining([
        { body: 'this is not JSON at all', reason: expect.stringContaining('the body is not valid JSON') },
        { body: '{"Records":"nope"}', reason: expect.stringContaining('not an S3 event notification') },
      ]),
    );
    expect(dead).toHaveLength(2);
  });

  it('extends the visibility of a message while its download is slow, so no second consumer gets it', async () => {
    await put(s3, bucket, 'q/slow.bin', contentFor('q/slow.bin', 1000));
    proxy.stall.set('q/slow.bin', 1);
    proxy.stallMs = 6000; // three times the 2 s visibility timeout
    await enqueue(notification({ bucket, key: 'q/slow.bin', op: 'put', size: 1000, sequencer: sequencers(1)[0] }));
    await eventually(
      () => proxy.objectGets('q/slow.bin'),
      (n) => n === 1,
      10_000,
      'download started',
    );
    // A second consumer polls the queue for the whole download, well past the 2 s visibility
    // timeout, until the file is committed: it never gets the message.
    const seenBySecondConsumer: unknown[] = [];
    await eventually(
      async () => {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0, MaxNumberOfMessages: 10 }),
        );
        seenBySecondConsumer.push(...Messages);
        return filesUnder(t.mirrorDir);
      },
      (f) => f.includes('q/slow.bin'),
      20_000,
      'slow file',
    );
    expect(seenBySecondConsumer).toEqual([]);
    await eventually(
      () => queueDepth(queueUrl),
      (n) => n === 0,
      10_000,
      'queue drained',
    );
    expect(proxy.objectGets('q/slow.bin')).toBe(1);
  });

  it('orders a key’s events by sequencer across messages', async () => {
    const [s1, s2] = sequencers(2);
    await put(s3, bucket, 'q/k.txt', 'final');
    await enqueue(notification({ bucket, key: 'q/k.txt', op: 'put', size: 5, sequencer: s2 }));
    await eventually(
      () => filesUnder(t.mirrorDir),
      (f) => f.includes('q/k.txt'),
      15_000,
      'q/k.txt',
    );
    await enqueue(notification({ bucket, key: 'q/k.txt', op: 'delete', sequencer: s1 }));
    await eventually(
      () => queueDepth(queueUrl),
      (n) => n === 0,
      15_000,
      'queue drained',
    );
    expect(await readFile(join(t.mirrorDir, 'q/k.txt'), 'utf8')).toBe('final');
  });
});

describe('acknowledged events survive a crash', () => {
  it('resumes events accepted before a kill -9 and the mirror converges', async () => {
    const s3 = testS3();
    const bucket = await newBucket(s3);
    const proxy = new S3Proxy(emulatorEndpoint());
    const endpoint = await proxy.start();
    const keys = Array.from({ length: 20 }, (_, i) => `crash/file-${i}.txt`);
    for (const k of keys) await put(s3, bucket, k, contentFor(k, 200));
    // Every GET hangs, so nothing can be applied before the process dies.
    for (const k of keys) proxy.stall.set(k, 1);
    proxy.stallMs = 60_000;
    const env = {
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      WEBHOOK_SECRET: SECRET,
      ENABLE_PERIODIC_SYNC: 'false',
      LOCAL_DOWNLOAD_DIR: join(tempDir('crash'), 'mirror'),
      STATE_DIR: tempDir('crash-state'),
      MIN_FREE_DISK_MB: '1',
    };
    const first = await startService(env);
    const body = JSON.stringify(notification(...keys.map((key): EventSpec => ({ bucket, key, op: 'put', size: 200 }))));
    const res = await fetch(`${first.url}/api/v1/s3-notification`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signWebhook(SECRET, body, Date.now()) },
      body,
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ accepted: keys.length });
    await eventually(
      () => proxy.objectGets(),
      (n) => n > 0,
      10_000,
      'downloads started',
    );
    first.child.kill('SIGKILL');
    await first.exited;
    expect(await filesUnder(env.LOCAL_DOWNLOAD_DIR)).toEqual([]);

    proxy.stall.clear();
    const second = await startService(env);
    try {
      // Every key by name: a count would also take a commit's temporary file, not yet renamed.
      await eventually(
        () => filesUnder(env.LOCAL_DOWNLOAD_DIR),
        (f) => keys.every((k) => f.includes(k)),
        20_000,
        'mirror converged',
      );
      for (const k of keys) expect(await readFile(join(env.LOCAL_DOWNLOAD_DIR, k))).toEqual(contentFor(k, 200));
      const pending = async (): Promise<number> =>
        ((await (await fetch(`${second.url}/api/v1/stats`)).json()) as { events: { pending: number } }).events.pending;
      await eventually(pending, (n) => n === 0, 10_000, 'inbox empty');
      expect(await filesUnder(env.LOCAL_DOWNLOAD_DIR)).toEqual([...keys].sort());
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
      await proxy.stop();
      s3.destroy();
    }
  });
});

describe('webhook events that fail to apply', () => {
  let s3: S3Client;
  let bucket: string;
  let proxy: S3Proxy;
  let t: TestApp;

  const boot = async (env: Record<string, string>): Promise<void> => {
    t = await bootApp({
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: await proxy.start(),
      WEBHOOK_SECRET: SECRET,
      API_KEY,
      // One download attempt per event attempt, so that the event's own retries are what is seen.
      RETRY_ATTEMPTS: '0',
      EVENT_RETRY_BASE_SECONDS: '0.2',
      EVENT_RETRY_MAX_SECONDS: '1',
      ...env,
    });
  };
  const parked = async (status: 'failed' | 'dead') =>
    (await t.http().get(`/api/v1/events/parked?status=${status}`).set('x-api-key', API_KEY).expect(200)).body as {
      events: Array<{ key: string; attempts: number; status: string; lastError?: string; retryAt?: string }>;
    };

  beforeEach(async () => {
    s3 = testS3();
    bucket = await newBucket(s3);
    proxy = new S3Proxy(emulatorEndpoint());
  });
  afterEach(async () => {
    await t.close();
    await proxy.stop();
    s3.destroy();
  });

  it('are retried on a backoff schedule, without a restart, until they apply', async () => {
    await boot({});
    await put(s3, bucket, 'p/flaky.txt', 'eventually');
    proxy.fail.set('p/flaky.txt', 3);
    await signed(t, notification({ bucket, key: 'p/flaky.txt', op: 'put', size: 10 })).expect(202);
    await eventually(
      () => filesUnder(t.mirrorDir),
      (f) => f.includes('p/flaky.txt'),
      15_000,
      'the parked event retried and applied',
    );
    expect(await readFile(join(t.mirrorDir, 'p/flaky.txt'), 'utf8')).toBe('eventually');
    expect(proxy.objectGets('p/flaky.txt')).toBe(4);
    const { events } = await eventually(
      () => stats(t),
      (s) => s.events.pending === 0 && s.events.parked === 0,
      5_000,
      'nothing left parked',
    );
    expect(events.applied.downloaded).toBe(1);
  });

  it('are given up after EVENT_MAX_ATTEMPTS, listed with the reason, and retried when an operator asks', async () => {
    await boot({ EVENT_MAX_ATTEMPTS: '2' });
    await put(s3, bucket, 'p/broken.txt', 'mended');
    proxy.fail.set('p/broken.txt', 1000);
    await signed(t, notification({ bucket, key: 'p/broken.txt', op: 'put', size: 6 })).expect(202);
    const dead = await eventually(
      () => parked('dead'),
      (p) => p.events.length === 1,
      15_000,
      'the event given up',
    );
    expect(dead.events[0]).toMatchObject({
      key: 'p/broken.txt',
      attempts: 2,
      status: 'dead',
      lastError: expect.stringMatching(/500|InternalError/),
    });
    expect(proxy.objectGets('p/broken.txt')).toBe(2);
    expect((await stats(t)).events).toMatchObject({ parked: 0, dead: 1 });
    const page = (query: string) => t.http().get(`/api/v1/events/parked?status=dead&${query}`).set('x-api-key', API_KEY);
    expect((await page('limit=1').expect(200)).body.nextCursor).toEqual(expect.any(String));
    const after = (await page('limit=1').expect(200)).body.nextCursor as string;
    expect((await page(`limit=1&cursor=${after}`).expect(200)).body).toEqual({ events: [], nextCursor: null });
    expect((await page('cursor=not-an-id').expect(400)).body.message).toEqual(
      expect.arrayContaining([expect.stringMatching(/cursor must be a UUID/)]),
    );
    expect((await page('limit=1001').expect(400)).body.message).toEqual(
      expect.arrayContaining([expect.stringMatching(/limit must not be greater than 1000/)]),
    );

    proxy.fail.clear();
    await t.http().post('/api/v1/events/parked/retry').expect(401);
    const retried = await t.http().post('/api/v1/events/parked/retry').set('x-api-key', API_KEY).expect(200);
    expect(retried.body).toEqual({ retried: 1 });
    await eventually(
      () => filesUnder(t.mirrorDir),
      (f) => f.includes('p/broken.txt'),
      10_000,
      'the retried event applied',
    );
    expect((await parked('dead')).events).toEqual([]);
  });

  it('that no retry can mend (a file/folder clash) are given up at once', async () => {
    await boot({});
    await put(s3, bucket, 'c/inner/file.txt', 'inner');
    await put(s3, bucket, 'c/inner', 'clash');
    await signed(t, notification({ bucket, key: 'c/inner/file.txt', op: 'put', size: 5 })).expect(202);
    await settled(t);
    await signed(t, notification({ bucket, key: 'c/inner', op: 'put', size: 5 })).expect(202);
    const dead = await eventually(
      () => parked('dead'),
      (p) => p.events.length === 1,
      10_000,
      'the clash given up',
    );
    expect(dead.events[0]).toMatchObject({ key: 'c/inner', attempts: 1, lastError: expect.stringMatching(/file\/folder clash/) });
    expect(proxy.objectGets('c/inner')).toBe(0);
  });
});

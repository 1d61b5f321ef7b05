import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhook, WEBHOOK_PATH } from '../../src/auth/webhook-signature';
import { notification } from '../../test/support/s3-events';
import { configFromEnv, createHandler, ForwarderConfig, LogEntry, PermanentForwardError } from '../src/handler';

const secret = 'lambda-test-secret-0123456789';

/** A webhook stand-in on loopback: answers with the scripted statuses in turn, then 202. */
class FakeWebhook {
  readonly received: Array<{ path: string; body: string; verified: boolean }> = [];
  script: Array<number | 'hang'> = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const check = verifyWebhook(
      [secret],
      { signature: req.headers[SIGNATURE_HEADER] as string, timestamp: req.headers[TIMESTAMP_HEADER] as string },
      body,
      Date.now(),
      300,
    );
    this.received.push({ path: req.url ?? '', body: body.toString(), verified: check.ok });
    const next = this.script.shift() ?? 202;
    if (next === 'hang') return; // never answers: the forwarder's timeout must fire
    res.writeHead(next, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: 1, ignored: 0, rejected: 0, records: [] }));
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('Lambda forwarder', () => {
  const hook = new FakeWebhook();
  let logs: LogEntry[];
  beforeAll(() => hook.start());
  afterAll(() => hook.stop());
  beforeEach(() => {
    hook.received.length = 0;
    hook.script = [];
    logs = [];
  });

  const make = (over: Partial<ForwarderConfig> = {}) =>
    createHandler(
      { apiEndpoint: hook.url, webhookSecret: secret, timeoutMs: 2000, retryAttempts: 3, initialDelayMs: 5, maxDelayMs: 20, ...over },
      { log: (e) => logs.push(e) },
    );
  const context = { getRemainingTimeInMillis: () => 30_000, awsRequestId: 'req-1' };
  const s3Event = notification({ bucket: 'b', key: 'a b/c+d.json', op: 'put', size: 3, sequencer: '00A1' });

  it('forwards a direct S3 event as it is, signed, to the webhook route', async () => {
    await expect(make()(s3Event, context)).resolves.toEqual({ forwarded: true });
    expect(hook.received).toEqual([{ path: WEBHOOK_PATH, body: JSON.stringify(s3Event), verified: true }]);
    expect(logs).toEqual([
      expect.objectContaining({ level: 'info', msg: 'forwarded', requestId: 'req-1', report: { accepted: 1, ignored: 0, rejected: 0 } }),
    ]);
  });

  it('retries 5xx, 429 and 408 with backoff, then succeeds', async () => {
    hook.script = [500, 429, 408];
    await expect(make()(s3Event, context)).resolves.toEqual({ forwarded: true });
    expect(hook.received).toHaveLength(4);
    expect(logs.filter((l) => l.msg === 'retrying forward')).toHaveLength(3);
  });

  it('never retries another 4xx, and fails the invocation so Lambda keeps the event', async () => {
    hook.script = [401];
    await expect(make()(s3Event, context)).rejects.toBeInstanceOf(PermanentForwardError);
    expect(hook.received).toHaveLength(1);
    expect(logs.at(-1)).toEqual(expect.objectContaining({ level: 'error' }));
  });

  it('gives up after RETRY_ATTEMPTS retries', async () => {
    hook.script = [503, 503, 503];
    await expect(make({ retryAttempts: 2 })(s3Event, context)).rejects.toThrow('503');
    expect(hook.received).toHaveLength(3);
  });

  it('times out a hanging attempt and retries it', async () => {
    hook.script = ['hang'];
    await expect(make({ timeoutMs: 200 })(s3Event, context)).resolves.toEqual({ forwarded: true });
    expect(hook.received).toHaveLength(2);
  });

  it('does not start an attempt the invocation has no time left for', async () => {
    const short = { getRemainingTimeInMillis: () => 1000, awsRequestId: 'r' };
    await expect(make()(s3Event, short)).rejects.toThrow('no time left');
    expect(hook.received).toHaveLength(0);
  });

  it('forwards each SQS message on its own and reports the ones it could not forward', async () => {
    const sqsEvent = {
      Records: ['m1', 'm2', 'm3'].map((id) => ({
        eventSource: 'aws:sqs',
        messageId: id,
        body: JSON.stringify(notification({ bucket: 'b', key: id, op: 'put' })),
      })),
    };
    // Messages are forwarded concurrently: fail whichever one arrives with key m2.
    const handler = createHandler(
      { apiEndpoint: hook.url, webhookSecret: secret, timeoutMs: 2000, retryAttempts: 0 },
      {
        log: (e) => logs.push(e),
        fetch: (input, init) =>
          String(init?.body).includes('"m2"') ? Promise.resolve(new Response('no', { status: 400 })) : fetch(input, init),
      },
    );
    await expect(handler(sqsEvent, context)).resolves.toEqual({ batchItemFailures: [{ itemIdentifier: 'm2' }] });
    expect(hook.received.map((r) => JSON.parse(r.body).Records[0].s3.object.key).sort()).toEqual(['m1', 'm3']);
  });

  it('reads its configuration from the environment and names what is wrong', () => {
    expect(configFromEnv({ API_ENDPOINT: 'https://mirror.example.com/', WEBHOOK_SECRET: secret })).toEqual({
      apiEndpoint: 'https://mirror.example.com',
      webhookSecret: secret,
      timeoutMs: 10_000,
      retryAttempts: 3,
    });
    expect(() => configFromEnv({ API_ENDPOINT: 'mirror', WEBHOOK_SECRET: 'short', TIMEOUT_SECONDS: '0' })).toThrow(
      /API_ENDPOINT.*WEBHOOK_SECRET.*TIMEOUT_SECONDS/,
    );
  });

  it('never logs the secret', async () => {
    hook.script = [500];
    await make()(s3Event, context);
    expect(JSON.stringify(logs)).not.toContain(secret);
  });
});

describe('Lambda bundle', () => {
  it('builds into one self-contained file without Nest or the AWS SDK', async () => {
    const { build } = await import('esbuild');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'lambda-bundle-'));
    const outfile = join(dir, 'handler.js');
    try {
      const result = await build({
        entryPoints: [join(__dirname, '..', 'src', 'handler.ts')],
        bundle: true,
        platform: 'node',
        target: 'node22',
        format: 'cjs',
        outfile,
        metafile: true,
        logLevel: 'silent',
      });
      const inputs = Object.keys(result.metafile.inputs);
      expect(inputs.some((p) => p.includes('@nestjs') || p.includes('@aws-sdk'))).toBe(false);
      expect(readFileSync(outfile, 'utf8')).not.toMatch(/require\("(?!node:)[^"]+"\)/);
      const mod = (await import(outfile)) as { handler: unknown; createHandler: unknown };
      expect(typeof mod.handler).toBe('function');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

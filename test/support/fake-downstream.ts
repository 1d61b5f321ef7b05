import { createHmac } from 'node:crypto';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

export type Fault = { status: number; retryAfter?: string } | { hang: true } | { delayMs: number };

/**
 * A downstream for tests, real HTTP on loopback: /auth/login issues JWTs (HS256, with exp), the
 * records endpoint checks the bearer token and records every batch by Idempotency-Key, and fails on
 * demand: scripted answers (500, 429 with Retry-After, 400, 401...), hangs, slow answers, an outage.
 */
export class FakeDownstream {
  readonly accessKey = 'downstream-access-key';
  /** Changed by a test to rotate the credentials: logins with the old ones are refused from then on. */
  secretKey = 'downstream-secret-key-value';
  private readonly signingKey = 'fake-downstream-signing-key';
  logins = 0;
  /** Every request to the records endpoint, in arrival order. */
  /** Every records request: when it arrived, when it was answered, and how. */
  readonly requests: Array<{ arrivedAt: number; at: number; key?: string; status: number; traceparent?: string }> = [];
  /** Idempotency-Key -> body of the first accepted delivery, and how many times it was accepted. */
  readonly batches = new Map<
    string,
    { records: unknown[]; timestamp: string; batchSize: number; deliveries: number; count: number; sumOfN: number }
  >();
  /** Answers for the next requests to the records endpoint, in order. */
  readonly faults: Fault[] = [];
  /** Until this time (ms), the records endpoint answers 503. */
  outageUntil = 0;
  /** Tokens carry the generation they were issued in; `revokeTokens` refuses every earlier one (401), as after a key rotation. */
  private tokenGeneration = 0;
  tokenLifetimeSeconds = 3600;
  latencyMs = 0;
  /**
   * For large volumes: batches keep no records, only how many there were and the sum of their
   * numeric field `n`, so that "every record once" is checked without holding them all.
   */
  summariseOnly = false;
  private server?: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get recordsUrl(): string {
    return `${this.url}/calls`;
  }

  get authUrl(): string {
    return `${this.url}/auth/login`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Every record accepted, once per Idempotency-Key, in key order. */
  delivered(): unknown[] {
    return [...this.batches.entries()].sort(([a], [b]) => compareKeys(a, b)).flatMap(([, b]) => b.records);
  }

  /** Records accepted and the sum of their `n`, once per Idempotency-Key (works in summary mode). */
  totals(): { records: number; sumOfN: number } {
    let records = 0;
    let sumOfN = 0;
    for (const b of this.batches.values()) {
      records += b.count;
      sumOfN += b.sumOfN;
    }
    return { records, sumOfN };
  }

  /** Every token issued so far is refused from now on. */
  revokeTokens(): void {
    this.tokenGeneration++;
  }

  /** Batches that came again under a key with other records than the first time (must stay 0). */
  keyMismatches = 0;

  duplicates(): number {
    return [...this.batches.values()].reduce((n, b) => n + b.deliveries - 1, 0);
  }

  private issue(): string {
    const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub: 'svc', iat: now, gen: this.tokenGeneration, exp: now + this.tokenLifetimeSeconds })}`;
    return `${head}.${createHmac('sha256', this.signingKey).update(head).digest('base64url')}`;
  }

  private valid(auth: string | undefined): boolean {
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : '';
    const [h, p, sig] = token.split('.');
    if (!h || !p || !sig || createHmac('sha256', this.signingKey).update(`${h}.${p}`).digest('base64url') !== sig) return false;
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { exp: number; gen: number };
    return claims.exp * 1000 > Date.now() && claims.gen === this.tokenGeneration;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    if (req.url === '/auth/login') {
      this.logins++;
      const creds = JSON.parse(body || '{}') as { accessKey?: string; secretKey?: string };
      if (creds.accessKey !== this.accessKey || creds.secretKey !== this.secretKey) return void res.writeHead(401).end();
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: this.issue() }));
    }
    const key = req.headers['idempotency-key'] as string | undefined;
    const arrivedAt = Date.now();
    const answer = (status: number, headers: Record<string, string> = {}): void => {
      this.requests.push({ arrivedAt, at: Date.now(), key, status, traceparent: req.headers.traceparent as string | undefined });
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ status }));
    };
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    if (Date.now() < this.outageUntil) return answer(503);
    if (!this.valid(req.headers.authorization)) return answer(401);
    const fault = this.faults.shift();
    if (fault && 'hang' in fault) {
      this.requests.push({ arrivedAt, at: Date.now(), key, status: 0 });
      return; // never answers
    }
    if (fault && 'delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault && 'status' in fault) return answer(fault.status, fault.retryAfter ? { 'retry-after': fault.retryAfter } : {});
    if (!key) return answer(400);
    const parsed = JSON.parse(body) as { records: unknown[]; timestamp: string; batchSize: number };
    const seen = this.batches.get(key);
    if (seen) {
      seen.deliveries++;
      if (!this.summariseOnly && JSON.stringify(seen.records) !== JSON.stringify(parsed.records)) this.keyMismatches++;
    } else {
      const count = parsed.records.length;
      const sumOfN = parsed.records.reduce<number>((sum, r) => sum + Number((r as { n?: unknown }).n ?? 0), 0);
      this.batches.set(key, { ...parsed, records: this.summariseOnly ? [] : parsed.records, deliveries: 1, count, sumOfN });
    }
    answer(200);
  }
}

/** Orders `fileId#batchNo` keys by file, then numerically by batch. */
function compareKeys(a: string, b: string): number {
  const [fa, na] = [a.slice(0, a.lastIndexOf('#')), Number(a.slice(a.lastIndexOf('#') + 1))];
  const [fb, nb] = [b.slice(0, b.lastIndexOf('#')), Number(b.slice(b.lastIndexOf('#') + 1))];
  return fa < fb ? -1 : fa > fb ? 1 : na - nb;
}

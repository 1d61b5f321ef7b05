import http, { IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

/** An ingest endpoint like NiFi's ListenHTTP, on loopback: basic auth, records each body, fails on demand. */
export class FakeIngest {
  readonly username = 'nifi-user';
  /** Changed by a test to rotate the credentials. */
  password = 'nifi-password-value';
  readonly received: Array<{ headers: http.IncomingHttpHeaders; body: Buffer }> = [];
  /** Statuses for the next POSTs, in order; then 200. */
  readonly failures: number[] = [];
  attempts = 0;
  private server?: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/contentListener`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    this.attempts++;
    const expected = `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`;
    if (req.headers.authorization !== expected) return void res.writeHead(401).end();
    const status = this.failures.shift();
    if (status) return void res.writeHead(status).end('unavailable');
    this.received.push({ headers: req.headers, body: Buffer.concat(chunks) });
    res.writeHead(200).end();
  }
}

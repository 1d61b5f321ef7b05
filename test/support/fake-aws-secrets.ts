import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * SSM Parameter Store and Secrets Manager as their SDK clients speak to them (AWS JSON 1.1: a POST
 * of JSON with X-Amz-Target naming the operation, signed with SigV4), on a random loopback port: no
 * emulator in the registries does either. Enough of both for the service: GetParameter (with
 * decryption) and GetSecretValue by version stage, their not-found errors, and call counts. A
 * request without a SigV4 Authorization header is refused, as AWS does.
 */
export class FakeAwsSecrets {
  private readonly parameters = new Map<string, string>();
  /** Secret id (name or ARN) -> its versions, newest first: [AWSCURRENT, AWSPREVIOUS]. */
  private readonly secrets = new Map<string, string[]>();
  /** `Target name` -> how many calls, e.g. `AmazonSSM.GetParameter /app/key`. */
  readonly calls = new Map<string, number>();
  unsigned = 0;
  private server?: Server;
  endpoint = '';

  setParameter(name: string, value: string): void {
    this.parameters.set(name, value);
  }

  /** Creates the secret, or rotates it: the new value is AWSCURRENT, the one before AWSPREVIOUS. */
  putSecret(id: string, value: string): void {
    this.secrets.set(id, [value, ...(this.secrets.get(id) ?? []).slice(0, 1)]);
  }

  callsTo(target: string, name: string): number {
    return this.calls.get(`${target} ${name}`) ?? 0;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(body));
    };
    const error = (type: string, message: string): void => reply(400, { __type: type, message });
    const auth = req.headers.authorization ?? '';
    if (!/^AWS4-HMAC-SHA256 Credential=\S+, SignedHeaders=\S+, Signature=[0-9a-f]{64}$/.test(auth) || !req.headers['x-amz-date']) {
      this.unsigned++;
      return error('MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    const name = String(input.Name ?? input.SecretId ?? '');
    this.calls.set(`${target} ${name}`, (this.calls.get(`${target} ${name}`) ?? 0) + 1);
    if (target === 'AmazonSSM.GetParameter') {
      const value = this.parameters.get(name);
      if (value === undefined) return error('ParameterNotFound', `Parameter ${name} not found.`);
      return reply(200, { Parameter: { Name: name, Type: input.WithDecryption ? 'SecureString' : 'String', Value: value, Version: 1 } });
    }
    if (target === 'secretsmanager.GetSecretValue') {
      const versions = this.secrets.get(name);
      if (!versions) return error('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
      const stage = String(input.VersionStage ?? 'AWSCURRENT');
      const value = stage === 'AWSCURRENT' ? versions[0] : stage === 'AWSPREVIOUS' ? versions[1] : undefined;
      if (value === undefined) {
        return error('ResourceNotFoundException', `Secrets Manager can't find the specified secret value for staging label: ${stage}`);
      }
      return reply(200, { ARN: name, Name: name, SecretString: value, VersionId: `v-${versions.indexOf(value)}`, VersionStages: [stage] });
    }
    return error('UnknownOperationException', `unknown operation ${target}`);
  }
}

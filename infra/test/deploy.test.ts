import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const script = join(__dirname, '..', 'deploy.sh');
// No PATH: a case that went past the dry run would fail at once on `npm`, never deploy or recurse.
const run = (...args: string[]) => {
  const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', env: {}, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const required = ['--environment', 'prod', '--stack-name', 'eu1', '--webhook-secret-name', 'prod/s3-sync/webhook'];

describe('infra/deploy.sh', () => {
  it('prints what it would run with --dry-run: build the forwarder, test the stack, bootstrap, deploy with the settings as context', () => {
    const r = run(
      ...required,
      '--region',
      'eu-west-1',
      '--auth-url',
      'https://api.example.com/login',
      '--calldetails-url',
      'https://api.example.com/calls',
      '--nifi-endpoint-url',
      'https://nifi.example.com/contentListener',
      '--replicas',
      '3',
      '--dry-run',
    );
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe('export AWS_REGION=eu-west-1');
    expect(lines.some((l) => l.includes('run build:lambda'))).toBe(true);
    expect(lines.some((l) => /infra test\s*$/.test(l))).toBe(true);
    expect(lines).toContain('npx cdk bootstrap');
    const deploy = lines.find((l) => l.startsWith('npx cdk deploy'));
    expect(deploy).toBe(
      'npx cdk deploy S3Sync-eu1 -c env=prod -c suffix=eu1 -c webhookSecretName=prod/s3-sync/webhook ' +
        '-c authUrl=https://api.example.com/login -c callDetailsUrl=https://api.example.com/calls ' +
        '-c nifiEndpointUrl=https://nifi.example.com/contentListener -c replicas=3 --require-approval broadening --outputs-file cdk-outputs-eu1.json',
    );
  });

  it('explains itself with --help', () => {
    const r = run('--help');
    expect(r.code).toBe(0);
    for (const flag of [
      '--stack-name',
      '--region',
      '--environment',
      '--auth-url',
      '--calldetails-url',
      '--nifi-endpoint-url',
      '--replicas',
      '--dry-run',
    ]) {
      expect(r.out).toContain(flag);
    }
  });

  it.each([
    [['--stack-name', 'eu1', '--webhook-secret-name', 'w'], '--environment is required'],
    [['--environment', 'staging', '--stack-name', 'eu1', '--webhook-secret-name', 'w'], '--environment must be dev or prod, not staging'],
    [['--environment', 'dev', '--webhook-secret-name', 'w'], '--stack-name is required'],
    [['--environment', 'dev', '--stack-name', 'Has_Caps', '--webhook-secret-name', 'w'], '--stack-name is required'],
    [['--environment', 'dev', '--stack-name', 'eu1'], '--webhook-secret-name is required'],
    [[...required, '--replicas', 'two'], '--replicas must be a positive whole number, not two'],
    [[...required, '--regoin', 'eu-west-1'], 'unknown option --regoin'],
    [[...required, '--region'], '--region needs a value'],
    [[...required, '--region', '--dry-run'], '--region needs a value'],
  ])('refuses %j with exit 64 and the reason, running nothing', (args, message) => {
    const r = run('--dry-run', ...args);
    expect(r.code).toBe(64);
    expect(r.err).toContain(message);
    expect(r.out).toBe('');
  });
});

import { SettableClock } from '../../test/support/clocks';
import { MissingSecretError, SecretsRepository } from '../aws/secrets.repository';
import type { AppConfig } from '../config/app-config';
import type { SecretRef } from '../config/secret-ref';
import { SecretValues } from './secret-values.service';

function setup() {
  const values = new Map<string, string>([['/app/key', 'v1']]);
  let reads = 0;
  let gate: Promise<void> = Promise.resolve();
  const repository = {
    parameter: async (name: string, variable: string) => {
      reads++;
      await gate;
      const v = values.get(name);
      if (v === undefined) throw new MissingSecretError(`SSM parameter ${name} (${variable}) does not exist`);
      return v;
    },
    secret: async (id: string, _variable: string, stage: string) => (stage === 'AWSPREVIOUS' ? undefined : values.get(id)),
  } as unknown as SecretsRepository;
  const clock = new SettableClock();
  const ref: SecretRef = { source: 'ssm', variable: 'SECRET_KEY_PARAM', name: '/app/key' };
  const config = { secrets: { cacheMs: 300_000 }, delivery: {}, bundles: {}, events: {} } as unknown as AppConfig;
  return {
    secrets: new SecretValues(config, repository, clock),
    ref,
    values,
    clock,
    reads: () => reads,
    hold: () => {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return release;
    },
  };
}

describe('SecretValues', () => {
  it('reads a parameter once per SECRETS_CACHE_SECONDS', async () => {
    const t = setup();
    await expect(t.secrets.get(t.ref)).resolves.toBe('v1');
    t.values.set('/app/key', 'v2');
    t.clock.ms += 299_000;
    await expect(t.secrets.get(t.ref)).resolves.toBe('v1');
    t.clock.ms += 1_000;
    await expect(t.secrets.get(t.ref)).resolves.toBe('v2');
    expect(t.reads()).toBe(2);
  });

  it('reads again on refresh, and many refreshes at once make one read', async () => {
    const t = setup();
    await t.secrets.get(t.ref);
    t.values.set('/app/key', 'rotated');
    const release = t.hold();
    const all = Promise.all([1, 2, 3].map(() => t.secrets.get(t.ref, { refresh: true })));
    release();
    await expect(all).resolves.toEqual(['rotated', 'rotated', 'rotated']);
    expect(t.reads()).toBe(2);
    // A refresh after that read finished reads again: a finished read never answers a refusal.
    await t.secrets.get(t.ref, { refresh: true });
    expect(t.reads()).toBe(3);
  });

  it('keeps no failed read: the next caller tries again', async () => {
    const t = setup();
    t.values.delete('/app/key');
    await expect(t.secrets.get(t.ref)).rejects.toThrow('SSM parameter /app/key (SECRET_KEY_PARAM) does not exist');
    t.values.set('/app/key', 'back');
    await expect(t.secrets.get(t.ref)).resolves.toBe('back');
  });

  it('gives a value set in the configuration as it is, and takes a field of a JSON secret', async () => {
    const t = setup();
    await expect(t.secrets.get({ source: 'value', variable: 'SECRET_KEY', value: 'plain' })).resolves.toBe('plain');
    t.values.set('nifi', JSON.stringify({ username: 'u', password: 'p' }));
    const field = (f: string): SecretRef => ({ source: 'secrets-manager', variable: 'NIFI_SECRET_ARN', id: 'nifi', field: f });
    await expect(t.secrets.get(field('password'))).resolves.toBe('p');
    await expect(t.secrets.get(field('token'))).rejects.toThrow('secret nifi (NIFI_SECRET_ARN) has no string field "token"');
  });
});

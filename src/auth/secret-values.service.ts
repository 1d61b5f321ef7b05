import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { MissingSecretError, SecretsRepository, SecretStage } from '../aws/secrets.repository';
import { Clock } from '../common/clock';
import { errorMessage } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { SecretRef } from '../config/secret-ref';

/**
 * The values of the credentials the configuration names (SecretRef): given directly, or read from
 * SSM / Secrets Manager and kept SECRETS_CACHE_SECONDS. A caller whose credential was refused (401,
 * 403) asks again with `refresh`, so that a rotation takes effect without a restart. Every
 * configured reference is read at start: a missing parameter stops the start, named.
 */
@Injectable()
export class SecretValues implements OnModuleInit {
  private readonly logger = new Logger(SecretValues.name);
  private readonly cache = new Map<string, { at: number; value: Promise<string | undefined>; settled: boolean }>();

  constructor(
    private readonly config: AppConfig,
    private readonly repository: SecretsRepository,
    private readonly clock: Clock,
  ) {}

  async onModuleInit(): Promise<void> {
    const { delivery, bundles, events } = this.config;
    const refs = [delivery.accessKey, delivery.secretKey, bundles.username, bundles.password, events.webhookSecret];
    await Promise.all(refs.map((ref) => ref && this.get(ref)));
  }

  /** Whether a refused credential is worth asking for again (it is read from AWS, not fixed in the configuration). */
  static refreshable(ref: SecretRef | undefined): boolean {
    return ref !== undefined && ref.source !== 'value';
  }

  async get(ref: SecretRef, options: { refresh?: boolean } = {}): Promise<string> {
    if (ref.source === 'value') return ref.value;
    const raw = await this.read(ref, 'AWSCURRENT', options.refresh ?? false);
    if (raw === undefined) throw new MissingSecretError(`${describe(ref)} (${ref.variable}) has no value`);
    return ref.source === 'secrets-manager' && ref.field ? field(raw, ref) : raw;
  }

  /** The version before the current one, for a Secrets Manager secret being rotated; undefined otherwise. */
  async previous(ref: SecretRef, options: { refresh?: boolean } = {}): Promise<string | undefined> {
    if (ref.source !== 'secrets-manager') return undefined;
    const raw = await this.read(ref, 'AWSPREVIOUS', options.refresh ?? false);
    return raw === undefined ? undefined : ref.field ? field(raw, ref) : raw;
  }

  private read(ref: Exclude<SecretRef, { source: 'value' }>, stage: SecretStage, refresh: boolean): Promise<string | undefined> {
    const key = `${describe(ref)}@${stage}`;
    const now = this.clock.nowMs();
    const cached = this.cache.get(key);
    // A refetch is served by a read still in flight (many refusals at once, one call), never by a finished one.
    const usable = cached && (refresh ? !cached.settled : now - cached.at < this.config.secrets.cacheMs);
    if (usable) return cached.value;
    const value =
      ref.source === 'ssm' ? this.repository.parameter(ref.name, ref.variable) : this.repository.secret(ref.id, ref.variable, stage);
    const entry = { at: now, value, settled: false };
    this.cache.set(key, entry);
    value.then(
      () => {
        entry.settled = true;
        if (refresh) this.logger.log({ variable: ref.variable, stage }, 'credential read again after a refusal');
      },
      // A failed read is not kept: the next caller tries again.
      (err: unknown) => {
        entry.settled = true;
        if (this.cache.get(key) === entry) this.cache.delete(key);
        this.logger.warn({ variable: ref.variable, err: errorMessage(err) }, 'credential could not be read');
      },
    );
    return value;
  }
}

function describe(ref: Exclude<SecretRef, { source: 'value' }>): string {
  return ref.source === 'ssm' ? `SSM parameter ${ref.name}` : `secret ${ref.id}`;
}

function field(raw: string, ref: Extract<SecretRef, { source: 'secrets-manager' }>): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new MissingSecretError(`secret ${ref.id} (${ref.variable}) is not JSON; expected {"${ref.field}": "..."}`);
  }
  const value = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)[ref.field!] : undefined;
  if (typeof value !== 'string') throw new MissingSecretError(`secret ${ref.id} (${ref.variable}) has no string field "${ref.field}"`);
  return value;
}

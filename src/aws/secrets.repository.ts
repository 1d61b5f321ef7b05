import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { AppError } from '../common/errors';
import { AppConfig } from '../config/app-config';

/** A parameter or secret the configuration names does not exist (or is not readable): a deployment error. */
export class MissingSecretError extends AppError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
    this.name = 'MissingSecretError';
  }
}

export type SecretStage = 'AWSCURRENT' | 'AWSPREVIOUS';

/** Reads of SSM Parameter Store and Secrets Manager, through the SDK's clients (created on first use). */
@Injectable()
export class SecretsRepository implements OnApplicationShutdown {
  private ssmClient?: SSMClient;
  private secretsClient?: SecretsManagerClient;

  constructor(private readonly config: AppConfig) {}

  /** The decrypted value of an SSM parameter (String or SecureString). */
  async parameter(name: string, variable: string): Promise<string> {
    this.ssmClient ??= new SSMClient(this.clientConfig(this.config.secrets.ssmEndpoint));
    try {
      const { Parameter } = await this.ssmClient.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      if (Parameter?.Value === undefined) throw new MissingSecretError(`SSM parameter ${name} (${variable}) has no value`);
      return Parameter.Value;
    } catch (err) {
      if (err instanceof ParameterNotFound) throw new MissingSecretError(`SSM parameter ${name} (${variable}) does not exist`);
      throw err;
    }
  }

  /** The string of a secret's version at `stage`; undefined for AWSPREVIOUS when the secret was never rotated. */
  async secret(id: string, variable: string, stage: SecretStage = 'AWSCURRENT'): Promise<string | undefined> {
    this.secretsClient ??= new SecretsManagerClient(this.clientConfig(this.config.secrets.secretsManagerEndpoint));
    try {
      const { SecretString } = await this.secretsClient.send(new GetSecretValueCommand({ SecretId: id, VersionStage: stage }));
      if (SecretString === undefined)
        throw new MissingSecretError(`secret ${id} (${variable}) has no string value (binary secrets are not read)`);
      return SecretString;
    } catch (err) {
      if (err instanceof ResourceNotFoundException) {
        if (stage === 'AWSPREVIOUS') return undefined;
        throw new MissingSecretError(`secret ${id} (${variable}) does not exist`);
      }
      throw err;
    }
  }

  private clientConfig(endpoint: string | undefined) {
    return { region: this.config.s3.region, endpoint, credentials: this.config.awsCredentials, maxAttempts: 3 };
  }

  onApplicationShutdown(): void {
    this.ssmClient?.destroy();
    this.secretsClient?.destroy();
  }
}

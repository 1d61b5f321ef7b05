import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  QueryCommandOutput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { AppConfig } from '../config/app-config';

export type Item = Record<string, unknown>;

/** A condition given with a write: the expression and its placeholders. */
export interface Condition {
  expression: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

export interface QueryInput {
  index?: string;
  keyCondition: string;
  names?: Record<string, string>;
  values: Record<string, unknown>;
  limit?: number;
  newestFirst?: boolean;
}

/** A table the service needs: its hash key and its global secondary indexes (hash + range, strings). */
export interface TableSpec {
  name: string;
  hashKey: string;
  indexes?: Array<{ name: string; hashKey: string; rangeKey: string }>;
  /** Attribute that DynamoDB's TTL deletes by (epoch seconds). */
  ttlAttribute?: string;
}

/** A table the configuration names does not exist, and creating it was not asked for. */
export class MissingTableError extends Error {
  constructor(readonly table: string) {
    super(`DynamoDB table "${table}" does not exist (create it with the infrastructure stack, or set DYNAMODB_CREATE_TABLES=true)`);
    this.name = 'MissingTableError';
  }
}

/**
 * DynamoDB access for the shared state: every write that decides ownership is conditional, and a
 * failed condition is an answer (false), not an error. Reads are strongly consistent; queries go
 * to global secondary indexes, which are eventually consistent.
 */
@Injectable()
export class DynamoRepository implements OnApplicationShutdown {
  private client?: DynamoDBClient;
  private doc?: DynamoDBDocumentClient;

  constructor(private readonly config: AppConfig) {}

  private documents(): DynamoDBDocumentClient {
    if (!this.doc) {
      this.client = new DynamoDBClient({
        region: this.config.s3.region,
        endpoint: this.config.state.dynamodb.endpoint,
        credentials: this.config.awsCredentials,
        maxAttempts: this.config.sync.retryAttempts + 1,
      });
      this.doc = DynamoDBDocumentClient.from(this.client, { marshallOptions: { removeUndefinedValues: true } });
    }
    return this.doc;
  }

  /** Checks that every table exists, creating the missing ones when `create` is set; MissingTableError otherwise. */
  async ensureTables(specs: readonly TableSpec[], create: boolean): Promise<void> {
    for (const spec of specs) {
      try {
        await this.documents().send(new DescribeTableCommand({ TableName: spec.name }));
        continue;
      } catch (err) {
        if (!(err instanceof ResourceNotFoundException)) throw err;
      }
      if (!create) throw new MissingTableError(spec.name);
      await this.createTable(spec);
    }
  }

  private async createTable(spec: TableSpec): Promise<void> {
    const indexes = spec.indexes ?? [];
    const attributes = new Set([spec.hashKey, ...indexes.flatMap((i) => [i.hashKey, i.rangeKey])]);
    // Replicas starting together may all try: the first creates the table, the others wait for it.
    const create = new CreateTableCommand({
      TableName: spec.name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [...attributes].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
      KeySchema: [{ AttributeName: spec.hashKey, KeyType: 'HASH' }],
      GlobalSecondaryIndexes:
        indexes.length === 0
          ? undefined
          : indexes.map((i) => ({
              IndexName: i.name,
              KeySchema: [
                { AttributeName: i.hashKey, KeyType: 'HASH' },
                { AttributeName: i.rangeKey, KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: 'ALL' },
            })),
    });
    try {
      await this.documents().send(create);
    } catch (err) {
      if (!(err instanceof ResourceInUseException)) throw err;
    }
    for (let i = 0; i < 100; i++) {
      const { Table } = await this.documents().send(new DescribeTableCommand({ TableName: spec.name }));
      if (Table?.TableStatus === 'ACTIVE') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (spec.ttlAttribute) {
      try {
        await this.documents().send(
          new UpdateTimeToLiveCommand({
            TableName: spec.name,
            TimeToLiveSpecification: { AttributeName: spec.ttlAttribute, Enabled: true },
          }),
        );
      } catch (err) {
        // Emulators (dynalite) do not implement TTL; readers treat expired items as absent anyway.
        if ((err as { name?: string }).name !== 'UnknownOperationException') throw err;
      }
    }
  }

  async ping(table: string): Promise<void> {
    await this.documents().send(new DescribeTableCommand({ TableName: table }));
  }

  async get(table: string, key: Item): Promise<Item | undefined> {
    const { Item: item } = await this.documents().send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    return item;
  }

  /** Writes `item` if `condition` holds (always without one); false when it does not. */
  async put(table: string, item: Item, condition?: Condition): Promise<boolean> {
    return this.conditional(() => this.documents().send(new PutCommand({ TableName: table, Item: item, ...conditionOf(condition) })));
  }

  /** Applies `update` if `condition` holds; false when it does not. Resolves with the new item when written. */
  async update(
    table: string,
    key: Item,
    update: { expression: string; names?: Record<string, string>; values?: Record<string, unknown> },
    condition?: Condition,
  ): Promise<Item | false> {
    try {
      const { Attributes } = await this.documents().send(
        new UpdateCommand({
          TableName: table,
          Key: key,
          UpdateExpression: update.expression,
          ConditionExpression: condition?.expression,
          ExpressionAttributeNames: nonEmpty({ ...update.names, ...condition?.names }),
          ExpressionAttributeValues: nonEmpty({ ...update.values, ...condition?.values }),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ?? {};
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  async delete(table: string, key: Item, condition?: Condition): Promise<boolean> {
    return this.conditional(() => this.documents().send(new DeleteCommand({ TableName: table, Key: key, ...conditionOf(condition) })));
  }

  /** Items matching the key condition, in range-key order, up to `limit` (every page read). */
  async query(table: string, input: QueryInput): Promise<Item[]> {
    const items: Item[] = [];
    await this.pages(
      table,
      input,
      (page) => {
        items.push(...(page.Items ?? []));
        return input.limit === undefined || items.length < input.limit;
      },
      () => (input.limit === undefined ? undefined : input.limit - items.length),
    );
    return items;
  }

  /** How many items match the key condition (every page counted). */
  async count(table: string, input: Omit<QueryInput, 'limit' | 'newestFirst'>): Promise<number> {
    let total = 0;
    await this.pages(table, { ...input, select: 'COUNT' }, (page) => {
      total += page.Count ?? 0;
      return true;
    });
    return total;
  }

  /** Runs a query page after page while `more` says so and DynamoDB has another page. */
  private async pages(
    table: string,
    input: QueryInput & { select?: 'COUNT' },
    more: (page: QueryCommandOutput) => boolean,
    limit: () => number | undefined = () => undefined,
  ): Promise<void> {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents().send(
        new QueryCommand({
          TableName: table,
          IndexName: input.index,
          KeyConditionExpression: input.keyCondition,
          ExpressionAttributeNames: input.names,
          ExpressionAttributeValues: input.values,
          ScanIndexForward: !input.newestFirst,
          Select: input.select,
          Limit: limit(),
          ExclusiveStartKey: start,
        }),
      );
      start = page.LastEvaluatedKey;
      if (!more(page)) return;
    } while (start);
  }

  private async conditional(write: () => Promise<unknown>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  onApplicationShutdown(): void {
    this.client?.destroy();
  }
}

/** DynamoDB refuses an empty placeholder map; an absent one is fine. */
function nonEmpty<T extends Record<string, unknown>>(map: T): T | undefined {
  return Object.keys(map).length > 0 ? map : undefined;
}

/** A condition as the SDK's command input spells it. */
function conditionOf(condition: Condition | undefined): {
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
} {
  return {
    ConditionExpression: condition?.expression,
    ExpressionAttributeNames: condition?.names,
    ExpressionAttributeValues: condition?.values,
  };
}

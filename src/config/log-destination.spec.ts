import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { LogDestination } from './log-destination';

describe('LogDestination', () => {
  const dir = mkdtempSync(join(tmpdir(), 'log-destination-'));

  it('appends to LOG_FILE and holds SIGHUP (for the reopen) until shutdown', async () => {
    const file = join(dir, 'service.log');
    const before = process.listenerCount('SIGHUP');
    const destination = new LogDestination({ level: 'info', format: 'json', file });
    const logger = pino({ level: 'info' }, destination.stream);
    expect(process.listenerCount('SIGHUP')).toBe(before + 1);

    logger.info('first');
    // Written asynchronously: wait for the line (the test's timeout bounds the wait).
    while (!readFileSync(file, 'utf8').includes('"msg":"first"')) await new Promise((r) => setTimeout(r, 10));
    destination.onApplicationShutdown();
    expect(process.listenerCount('SIGHUP')).toBe(before);
  });

  it('refuses, at construction, a file it cannot append to, naming it', () => {
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, '');
    expect(() => new LogDestination({ level: 'info', format: 'json', file: join(blocker, 'service.log') })).toThrow(
      `LOG_FILE: cannot append to ${join(blocker, 'service.log')}`,
    );
  });
});

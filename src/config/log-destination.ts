import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { DestinationStream } from 'pino';
import { errorMessage } from '../common/errors';
import type { AppConfig } from './app-config';

const PRETTY = { singleLine: true, translateTime: 'SYS:HH:MM:ss.l' };

/**
 * Where the log goes: stdout (JSON, or pretty for a terminal) and, with LOG_FILE, that file too.
 * The file is reopened on SIGHUP, so that logrotate can move it away and the next line starts a new
 * one; without a file, SIGHUP keeps Node's default (the process ends).
 */
@Injectable()
export class LogDestination implements OnApplicationShutdown {
  readonly stream: DestinationStream;
  private readonly file?: ReturnType<typeof pino.destination>;
  private readonly reopen = (): void => this.file?.reopen();

  constructor(log: AppConfig['log']) {
    const stdout = log.format === 'pretty' ? pino.transport({ target: 'pino-pretty', options: PRETTY }) : pino.destination(1);
    if (!log.file) {
      this.stream = stdout;
      return;
    }
    openable(log.file);
    this.file = pino.destination({ dest: log.file, sync: false });
    process.on('SIGHUP', this.reopen);
    // The logger's level decides what is written; both streams take every line it lets through.
    this.stream = pino.multistream([
      { stream: stdout, level: 'trace' },
      { stream: this.file, level: 'trace' },
    ]);
  }

  /** What is still buffered is written by pino's own exit handler. */
  onApplicationShutdown(): void {
    process.off('SIGHUP', this.reopen);
  }
}

/** Checked at start, synchronously: a path that cannot be written stops the start with its reason. */
function openable(file: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    closeSync(openSync(file, 'a'));
  } catch (err) {
    throw new Error(`LOG_FILE: cannot append to ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

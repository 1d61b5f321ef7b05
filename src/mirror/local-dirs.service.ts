import { Injectable, Logger } from '@nestjs/common';
import { type Dir, lstatSync, mkdirSync, opendirSync, realpathSync, Stats } from 'node:fs';
import { lstat, mkdir, realpath, rmdir, unlink } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { dirname, join, sep } from 'node:path';
import { Clock } from '../common/clock';
import { AppError, ConflictError, isErrno, NotFoundError, UnsafeKeyError } from '../common/errors';
import { isStrictlyInside, KeyMapping, mapKey, TEMP_SUFFIX } from '../common/object-key';
import { AppConfig } from '../config/app-config';
import type { LocalFile } from './file-version';

export type FileMapping = Extract<KeyMapping, { kind: 'file' }>;

/** How long a folder checked to resolve inside the root is trusted: a symlink planted later is still caught. */
const DIR_CHECK_TTL_MS = 5000;
const MAX_CHECKED_DIRS = 10_000;
/**
 * The sweep for partial files reads folders this many entries a system call, synchronously, and
 * gives the event loop a turn after each batch: 0.5 us of CPU an entry, against 3.5 us for an
 * async iteration with a path joined for every entry (a million files on tmpfs, async hooks on, as
 * with tracing). The sweep runs beside the first sync after a start, which it slowed by as much.
 */
const SWEEP_BATCH = 1024;

/**
 * The mirror directory: which path a key may use (object-key.ts decides), folders created and
 * checked to stay inside the root, folders pruned when emptied, and the partial files a crash left.
 */
@Injectable()
export class LocalDirs {
  private readonly logger = new Logger(LocalDirs.name);
  readonly root: string;
  private realRoot = '';
  /** Wall-clock time the mirror was opened: a partial file older than this was left by an earlier process. */
  private openedAtMs = 0;
  /** Shared by concurrent downloads into one folder. */
  private readonly checkedDirs = new Map<string, { at: number; ready: Promise<void> }>();
  /** Folders being written into, with how many writes use them (see usingDir). */
  private readonly dirsInUse = new Map<string, number>();

  constructor(
    config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.root = config.sync.localDir;
  }

  open(): void {
    mkdirSync(this.root, { recursive: true });
    this.realRoot = realpathSync(this.root);
    this.openedAtMs = Date.now();
  }

  /** The file path of `key`; UnsafeKeyError for refused keys and folder markers. */
  requireFile(key: string): FileMapping {
    const mapping = mapKey(this.root, key);
    if (mapping.kind === 'file') return mapping;
    throw new UnsafeKeyError(key, mapping.kind === 'refused' ? mapping.reason : 'folder marker, not a file');
  }

  /** The regular file at a mapped path, if one exists (synchronous: one lstat, used per listed key). */
  localFile(mapping: FileMapping): LocalFile | undefined {
    const st = this.lstat(mapping);
    return st?.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : undefined;
  }

  /**
   * Why the object of `mapping` cannot be written where the disk is now, if it cannot: another key
   * made its path a folder, or made a parent folder a file. Decided before any GET, so that a clash
   * costs one stat per run, not a download that fails at the rename.
   */
  clash(mapping: FileMapping): ConflictError | undefined {
    try {
      return lstatSync(mapping.absPath, { throwIfNoEntry: false })?.isDirectory() ? folderInTheWay(mapping.key) : undefined;
    } catch (err) {
      if (isErrno(err, 'ENOTDIR')) return fileInTheWay(mapping.key);
      throw err;
    }
  }

  /** undefined when nothing is there, including when a parent is a file (a clash, see clash()). */
  private lstat(mapping: FileMapping): Stats | undefined {
    try {
      return lstatSync(mapping.absPath, { throwIfNoEntry: false });
    } catch (err) {
      if (isErrno(err, 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  /** The real path of a mapped file, refused when it resolves outside the root (after symlinks) or is not a lone regular file. */
  async realPathInside(mapping: FileMapping): Promise<string> {
    let real: string;
    try {
      real = await realpath(mapping.absPath);
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw new NotFoundError(`${mapping.key} is not in the mirror`);
      throw err;
    }
    if (!isStrictlyInside(this.realRoot, real)) throw new UnsafeKeyError(mapping.key, 'resolves outside the mirror directory');
    // Only what the mirror wrote: one regular file, not a link to something elsewhere planted in it.
    const st = await lstat(real);
    if (!st.isFile()) throw new UnsafeKeyError(mapping.key, 'not a regular file');
    if (st.nlink !== 1) throw new UnsafeKeyError(mapping.key, 'the local file has other hard links');
    return real;
  }

  async assertInsideRoot(dir: string): Promise<void> {
    const real = await realpath(dir);
    if (real !== this.realRoot && !isStrictlyInside(this.realRoot, real)) {
      throw new AppError('UNSAFE_KEY', `${dir} resolves outside the mirror directory (symlink?)`);
    }
  }

  /**
   * Creates `dir` (see ensureDir) and runs `task`, which writes into it, with `dir` and its parents
   * marked in use: the pruning of folders emptied by the delete of another key skips them. A prune
   * that had already started can still remove the folder under the write (ENOENT): it is then
   * created again and the write made once more. Real-time events make such neighbours common.
   */
  async usingDir<T>(dir: string, key: string, task: () => Promise<T>): Promise<T> {
    const dirs: string[] = [];
    for (let d = dir; d.startsWith(this.root + sep); d = dirname(d)) dirs.push(d);
    for (const d of dirs) this.dirsInUse.set(d, (this.dirsInUse.get(d) ?? 0) + 1);
    try {
      for (let attempt = 0; ; attempt++) {
        await this.ensureDir(dir, key);
        try {
          return await task();
        } catch (err) {
          if (attempt > 0 || !isErrno(err, 'ENOENT')) throw err;
          this.checkedDirs.delete(dir);
        }
      }
    } finally {
      for (const d of dirs) {
        const n = this.dirsInUse.get(d)! - 1;
        if (n === 0) this.dirsInUse.delete(d);
        else this.dirsInUse.set(d, n);
      }
    }
  }

  /** Removes `dir` and its parents while they are empty and no write uses them. */
  async pruneEmptyDirs(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.root + sep) && !this.dirsInUse.has(current)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
      this.checkedDirs.delete(current);
      current = dirname(current);
    }
  }

  /**
   * Removes the partial files a crash left. The walk of a large mirror runs beside the first
   * downloads and health probes, so only files last written before the mirror was opened go:
   * this process's own are newer. Returns how many were removed.
   */
  async removeStaleTempFiles(): Promise<number> {
    let removed = 0;
    let sinceTurn = 0;
    const folders = [this.root];
    while (folders.length > 0) {
      const folder = folders.pop()!;
      let dir: Dir;
      try {
        dir = opendirSync(folder, { bufferSize: SWEEP_BATCH });
      } catch {
        continue; // removed meanwhile
      }
      try {
        for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
          if (entry.isDirectory()) folders.push(folder + sep + entry.name);
          else if (entry.isFile() && entry.name.endsWith(TEMP_SUFFIX)) {
            const path = folder + sep + entry.name;
            const st = await lstat(path).catch(() => undefined);
            if (st && st.mtimeMs < this.openedAtMs) {
              await unlink(path).catch(() => undefined);
              removed++;
            }
          }
          if (++sinceTurn === SWEEP_BATCH) {
            sinceTurn = 0;
            await nextTurn();
          }
        }
      } catch {
        // A folder removed while it was read: nothing left in it to sweep.
      } finally {
        dir.closeSync();
      }
    }
    if (removed > 0) this.logger.log({ removed }, 'removed partial downloads left by a previous run');
    return removed;
  }

  /**
   * mkdir -p one folder at a time from the root, refusing a path that crosses a symlink (so nothing
   * is ever created outside the mirror through one planted in it) or a file (a/b vs a). Parents
   * checked within DIR_CHECK_TTL_MS are not looked at again.
   */
  private ensureDir(dir: string, key: string): Promise<void> {
    const now = this.clock.nowMs();
    const cached = this.checkedDirs.get(dir);
    if (cached && now - cached.at < DIR_CHECK_TTL_MS) return cached.ready;
    const ready = this.createDir(dir, key);
    this.checkedDirs.set(dir, { at: now, ready });
    ready.catch(() => this.checkedDirs.delete(dir));
    if (this.checkedDirs.size > MAX_CHECKED_DIRS) this.checkedDirs.clear();
    return ready;
  }

  private async createDir(dir: string, key: string): Promise<void> {
    if (!dir.startsWith(this.root + sep)) return;
    let current = this.root;
    for (const part of dir.slice(this.root.length + 1).split(sep)) {
      current = join(current, part);
      const checked = current === dir ? undefined : this.checkedDirs.get(current);
      if (checked && this.clock.nowMs() - checked.at < DIR_CHECK_TTL_MS) {
        await checked.ready;
        continue;
      }
      await this.folderStep(current, key);
    }
  }

  /** Makes `path` a folder if nothing is there; refuses a symlink or a file in its place. */
  private async folderStep(path: string, key: string): Promise<void> {
    let st = await lstat(path).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    });
    if (!st) {
      try {
        await mkdir(path);
        return;
      } catch (err) {
        if (isErrno(err, 'ENOTDIR')) throw fileInTheWay(key);
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      st = await lstat(path);
    }
    if (st.isSymbolicLink()) throw new UnsafeKeyError(key, `${path} is a symlink: the mirror never writes through one`);
    if (!st.isDirectory()) throw fileInTheWay(key);
  }
}

export function folderInTheWay(key: string): ConflictError {
  return new ConflictError(`file/folder clash: "${key}" is a folder locally, so the object cannot be written`);
}

function fileInTheWay(key: string): ConflictError {
  return new ConflictError(`file/folder clash: a parent of "${key}" is a file locally (another object has that key)`);
}

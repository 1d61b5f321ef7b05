// @ts-check
// Runs in a worker thread (piscina). Checks small downloaded objects' MD5 and commits them to
// disk: open, write, fdatasync, set mtime, close, rename. On the main thread through libuv's pool
// that is six round trips per file (~200 us of main-thread CPU a file); here a batch of files costs
// one message. Everything but the fdatasync is a synchronous call (page-cache work, microseconds);
// the fdatasync is synchronous too while it is that fast, and goes to libuv's pool when it has to
// wait for a disk (see createFlusher).
// Plain CommonJS so that piscina can require() it both from dist/ and under the test runner.
'use strict';
const fs = require('node:fs');
const { promisify } = require('node:util');
const { createHash } = require('node:crypto');

const fdatasync = promisify(fs.fdatasync);

/** A synchronous fdatasync slower than this means the data had to reach a device. */
const FAST_FLUSH_NS = 200_000;
/** Flushes sent to libuv's pool after a slow one, before the next is timed again. */
const POOLED_FLUSHES = 256;

/**
 * fdatasync, made in this thread while it is fast (tmpfs, or a disk whose cache survives a power
 * cut: a few microseconds) and through libuv's pool while it waits for a device (milliseconds, during
 * which this thread hashes and writes the next files and several flushes proceed at once). A flush
 * through the pool costs about 25 us of CPU in thread wake-ups, more than a fast flush takes: on
 * tmpfs, doing them here cut the service's CPU for set A of the benchmark (5,000 small objects) by
 * 8%. A slow flush sends the next POOLED_FLUSHES to the pool; then one is timed again, so a disk
 * that becomes fast, or slow, is noticed.
 * @param {(fd: number) => void} flushSync @param {(fd: number) => Promise<void>} flushPooled @param {() => number} nowNs
 * @returns {(fd: number) => Promise<void> | undefined}
 */
function createFlusher(flushSync, flushPooled, nowNs) {
  let pooledLeft = 0;
  return (fd) => {
    if (pooledLeft > 0) {
      pooledLeft--;
      return flushPooled(fd);
    }
    const start = nowNs();
    flushSync(fd);
    if (nowNs() - start > FAST_FLUSH_NS) pooledLeft = POOLED_FLUSHES;
    return undefined;
  };
}

const flushData = createFlusher(fs.fdatasyncSync, fdatasync, () => Number(process.hrtime.bigint()));

/**
 * @typedef {{ tmpPath: string, target: string, chunks: Uint8Array[], mtimeMs: number, md5?: string }} CommitFile
 * @typedef {{ ok: true } | { ok: false, code: string | undefined, message: string }} CommitResult
 */

/** @param {CommitFile} file @returns {Promise<CommitResult>} */
async function commitOne(file) {
  if (file.md5 !== undefined) {
    const hash = createHash('md5');
    for (const chunk of file.chunks) hash.update(chunk);
    const actual = hash.digest('hex');
    if (actual !== file.md5) return { ok: false, code: 'EINTEGRITY', message: `md5 mismatch (expected ${file.md5}, got ${actual})` };
  }
  let fd = -1;
  try {
    fd = fs.openSync(file.tmpPath, 'wx', 0o644);
    let position = 0;
    for (const chunk of file.chunks) {
      let done = 0;
      while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done, position + done);
      position += chunk.length;
    }
    await flushData(fd);
    const mtime = new Date(file.mtimeMs);
    fs.futimesSync(fd, mtime, mtime);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(file.tmpPath, file.target);
    return { ok: true };
  } catch (err) {
    if (fd !== -1) fs.closeSync(fd);
    try {
      fs.unlinkSync(file.tmpPath);
    } catch {
      // it may never have been created
    }
    const e = /** @type {NodeJS.ErrnoException} */ (err);
    return { ok: false, code: e.code, message: e.message };
  }
}

/** @param {{ files: CommitFile[] }} task @returns {Promise<CommitResult[]>} */
module.exports = function commitFiles(task) {
  return Promise.all(task.files.map(commitOne));
};

/**
 * @type {Buffer | undefined} this worker's read buffer, made on the first read-back only. A worker holds several
 * messages at once, but md5OfRange runs synchronously from start to end, so two tasks never use it together.
 */
let readBuffer;

/**
 * The MD5 of `length` bytes of the file at `path` from `start` (a part of a multipart object, or a
 * whole object above the in-memory size), read back from the page cache it was just written to, so
 * that hashing runs beside the downloads instead of on the event loop.
 * @param {{ path: string, start: number, length: number }} task @returns {Uint8Array}
 */
module.exports.md5OfRange = function md5OfRange(task) {
  const hash = createHash('md5');
  const buffer = (readBuffer ??= Buffer.allocUnsafe(1024 * 1024));
  const fd = fs.openSync(task.path, 'r');
  try {
    let done = 0;
    while (done < task.length) {
      const n = fs.readSync(fd, buffer, 0, Math.min(buffer.length, task.length - done), task.start + done);
      if (n === 0) throw new Error(`${task.length - done} bytes missing at ${task.start + done}`);
      hash.update(buffer.subarray(0, n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest();
};

module.exports.createFlusher = createFlusher;
module.exports.FLUSH_POLICY = { FAST_FLUSH_NS, POOLED_FLUSHES };

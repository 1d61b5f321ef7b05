// @ts-check
// Runs in a worker thread (piscina). Checks small downloaded objects' MD5 and commits them to
// disk: open, write, fdatasync, set mtime, close, rename. On the main thread through libuv's pool
// that is six round trips per file (~200 us of main-thread CPU a file); here a batch of files costs
// one message. Everything but the fdatasync is a synchronous call (page-cache work, microseconds);
// the fdatasyncs go to libuv's pool, so the files of a batch reach the disk in parallel while this
// thread hashes and writes the next ones, and a worker needs no thread of its own per fsync.
// Plain CommonJS so that piscina can require() it both from dist/ and under the test runner.
'use strict';
const fs = require('node:fs');
const { promisify } = require('node:util');
const { createHash } = require('node:crypto');

const fdatasync = promisify(fs.fdatasync);

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
    await fdatasync(fd);
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

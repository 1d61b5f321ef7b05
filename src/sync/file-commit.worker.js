// @ts-check
// Runs in a worker thread (piscina). Commits small downloaded objects to disk, each as one
// synchronous sequence: open, write, fdatasync, set mtime, close, rename. On the main thread
// through libuv's pool that is six round trips per file (~200 us of main-thread CPU a file); here
// a batch of files costs one message, and fsyncs still run in parallel, off the event loop.
// Plain CommonJS so that piscina can require() it both from dist/ and under the test runner.
'use strict';
const fs = require('node:fs');

/**
 * @typedef {{ tmpPath: string, target: string, data: Uint8Array, mtimeMs: number }} CommitFile
 * @typedef {{ ok: true } | { ok: false, code: string | undefined, message: string }} CommitResult
 */

/** @param {CommitFile} file @returns {CommitResult} */
function commitOne(file) {
  let fd = -1;
  try {
    fd = fs.openSync(file.tmpPath, 'wx', 0o644);
    let written = 0;
    while (written < file.data.length) written += fs.writeSync(fd, file.data, written, file.data.length - written, written);
    fs.fdatasyncSync(fd);
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

/** @param {{ files: CommitFile[] }} task @returns {CommitResult[]} */
module.exports = function commitFiles(task) {
  return task.files.map(commitOne);
};

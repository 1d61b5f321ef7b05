// @ts-check
// Runs in a worker thread (piscina). Commits a small downloaded object to disk as one synchronous
// sequence: open, write, fdatasync, set mtime, close, rename. Done on the main thread through
// libuv's pool this is six round trips per file (~200 us of main-thread CPU each file); here it
// is one message, and fsyncs still run in parallel, off the event loop. Plain CommonJS so that
// piscina can require() it both from dist/ and under the test runner.
'use strict';
const fs = require('node:fs');

/**
 * @param {{ tmpPath: string, target: string, data: Uint8Array, mtimeMs: number }} task
 * @returns {{ ok: true } | { ok: false, code: string | undefined, message: string }}
 */
module.exports = function commitFile(task) {
  let fd = -1;
  try {
    fd = fs.openSync(task.tmpPath, 'wx', 0o644);
    let written = 0;
    while (written < task.data.length) written += fs.writeSync(fd, task.data, written, task.data.length - written, written);
    fs.fdatasyncSync(fd);
    const mtime = new Date(task.mtimeMs);
    fs.futimesSync(fd, mtime, mtime);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(task.tmpPath, task.target);
    return { ok: true };
  } catch (err) {
    if (fd !== -1) fs.closeSync(fd);
    try {
      fs.unlinkSync(task.tmpPath);
    } catch {
      // it may never have been created
    }
    const e = /** @type {NodeJS.ErrnoException} */ (err);
    return { ok: false, code: e.code, message: e.message };
  }
};

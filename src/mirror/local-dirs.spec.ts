import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock } from '../common/clock';
import { TEMP_SUFFIX } from '../common/object-key';
import type { AppConfig } from '../config/app-config';
import { LocalDirs } from './local-dirs.service';

describe('LocalDirs.removeStaleTempFiles', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'local-dirs-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('removes the partial files an earlier process left, and none this process is writing', async () => {
    const dirs = new LocalDirs({ sync: { localDir: root } } as unknown as AppConfig, new SystemClock());
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    const stale = [join(root, `.dead-1${TEMP_SUFFIX}`), join(root, 'a', 'b', `.dead-2${TEMP_SUFFIX}`)];
    for (const path of stale) {
      writeFileSync(path, 'half a file');
      utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    }
    dirs.open();
    // Written after the mirror was opened: a download or a health probe of this process.
    const own = join(root, 'a', `.live-1${TEMP_SUFFIX}`);
    writeFileSync(own, 'being written');
    utimesSync(own, new Date(Date.now() + 1000), new Date(Date.now() + 1000));
    const kept = join(root, 'a', 'b', 'file.txt');
    writeFileSync(kept, 'a mirrored file');
    utimesSync(kept, new Date(0), new Date(0));

    expect(await dirs.removeStaleTempFiles()).toBe(2);
    expect(stale.filter((p) => existsSync(p))).toEqual([]);
    expect(existsSync(own)).toBe(true);
    expect(existsSync(kept)).toBe(true);
  });

  it('sweeps folders of more entries than one read takes, giving the event loop turns meanwhile', async () => {
    const dirs = new LocalDirs({ sync: { localDir: root } } as unknown as AppConfig, new SystemClock());
    mkdirSync(join(root, 'wide', 'deep'), { recursive: true });
    for (let i = 0; i < 2500; i++) writeFileSync(join(root, 'wide', `f-${i}.json`), '');
    const stale = [join(root, 'wide', `.f-1${TEMP_SUFFIX}`), join(root, 'wide', 'deep', `.f-2${TEMP_SUFFIX}`)];
    for (const path of stale) {
      writeFileSync(path, 'half');
      utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    }
    dirs.open();
    let turns = 0;
    const ticking = setInterval(() => turns++, 0);
    try {
      expect(await dirs.removeStaleTempFiles()).toBe(2);
    } finally {
      clearInterval(ticking);
    }
    expect(stale.filter((p) => existsSync(p))).toEqual([]);
    expect(existsSync(join(root, 'wide', 'f-2499.json'))).toBe(true);
    expect(turns).toBeGreaterThan(0);
  });
});

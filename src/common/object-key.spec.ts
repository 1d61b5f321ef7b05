import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { isStrictlyInside, mapKey, TEMP_SUFFIX } from './object-key';

const root = mkdtempSync(join(tmpdir(), 'object-key-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('mapKey', () => {
  it.each([
    ['a.txt', 'a.txt'],
    ['logs/2026/11/23/app.jsonl', 'logs/2026/11/23/app.jsonl'],
    ['with space/and+plus.txt', 'with space/and+plus.txt'],
    ['percent%20literal/100%.txt', 'percent%20literal/100%.txt'],
    ['café/résumé.txt', 'café/résumé.txt'],
    ['日本語/ファイル.json', '日本語/ファイル.json'],
    ['emoji/😀.txt', 'emoji/😀.txt'],
    ['..hidden/..dots..', '..hidden/..dots..'],
    ['.env', '.env'],
    ['a/.../b', 'a/.../b'],
    ['Mixed_Case/UPPER_lower', 'Mixed_Case/UPPER_lower'],
  ])('maps %j to a file inside the root', (key, rel) => {
    const m = mapKey(root, key);
    expect(m).toEqual({ kind: 'file', key, relPath: rel, absPath: join(root, ...rel.split('/')) });
    if (m.kind === 'file') expect(m.absPath.startsWith(root + sep)).toBe(true);
  });

  it.each(['folder/', 'a/b/c/'])('treats %j as a folder marker', (key) => {
    expect(mapKey(root, key)).toEqual({ kind: 'folder-marker', key });
  });

  it.each([
    ['', 'empty key'],
    ['../etc/passwd', '".." path segment'],
    ['a/../../etc/passwd', '".." path segment'],
    ['a/..', '".." path segment'],
    ['..', '".." path segment'],
    ['./a', '"." path segment'],
    ['a/./b', '"." path segment'],
    ['/etc/passwd', 'absolute path'],
    ['a//b', 'empty path segment (//)'],
    ['a\\..\\..\\b', 'contains a backslash'],
    ['..\\evil', 'contains a backslash'],
    ['nul\0byte', 'contains a NUL byte'],
    ['line\nbreak', 'contains a control character'],
    ['del\x7fchar', 'contains a control character'],
    [`x/${'n'.repeat(256)}`, 'a path segment is longer than 255 bytes'],
    [`${'é'.repeat(128)}`, 'a path segment is longer than 255 bytes'],
    [`dir/file${TEMP_SUFFIX}`, `ends with the reserved suffix ${TEMP_SUFFIX}`],
    ['../', 'invalid path segment'],
    ['a/../', 'invalid path segment'],
    ['a//', 'invalid path segment'],
  ])('refuses %j (%s)', (key, reason) => {
    expect(mapKey(root, key)).toEqual({ kind: 'refused', key, reason });
  });

  it('refuses a key longer than PATH_MAX allows', () => {
    const key = Array.from({ length: 40 }, () => 'x'.repeat(100)).join('/');
    expect(mapKey(root, key)).toMatchObject({ kind: 'refused', reason: 'longer than 3800 bytes' });
  });

  it('never yields a path outside the root, whatever the key', () => {
    const parts = ['..', '.', '', 'a', '/', '\\', '%2e%2e', '\0', 'b/..', '../..', '~', 'é'];
    for (const a of parts)
      for (const b of parts)
        for (const c of parts) {
          const m = mapKey(root, `${a}/${b}${c}`);
          if (m.kind === 'file') expect(m.absPath.startsWith(root + sep)).toBe(true);
        }
  });
});

describe('isStrictlyInside', () => {
  it.each([
    ['/m/a', true],
    ['/m/..a', true],
    ['/m/a/../b', true],
    ['/m', false],
    ['/m/..', false],
    ['/m/../x', false],
    ['/mx/a', false],
    ['/', false],
  ])('%s inside /m: %s', (path, inside) => {
    expect(isStrictlyInside('/m', path)).toBe(inside);
  });
});

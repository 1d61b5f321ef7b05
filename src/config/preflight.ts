import { lookup } from 'node:dns/promises';
import { mkdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { AppConfig } from './app-config';
import { ConfigValidationError } from './env.schema';

const MiB = 1024 * 1024;

/**
 * What the environment must offer before the service starts, checked once and said all together
 * (exit code 78), instead of a stack trace from deep inside a module or, for a folder under /proc,
 * a recursive mkdir that never returns: the API host resolves, the mirror and state folders exist
 * or can be made, are folders and take a write, MIN_FREE_DISK_MB fits on the disk at all, and
 * AWS_CA_BUNDLE is a readable PEM file.
 */
export async function preflight(config: AppConfig): Promise<void> {
  const problems = (
    await Promise.all([
      hostProblem(config.api.host),
      dirProblem('LOCAL_DOWNLOAD_DIR', config.sync.localDir).then(
        async (problem) => problem ?? (await diskProblem(config.sync.localDir, config.sync.minFreeDiskBytes)),
      ),
      dirProblem('STATE_DIR', config.state.dir),
      caBundleProblem(config.s3.caBundle),
    ])
  ).filter((p): p is string => p !== undefined);
  if (problems.length > 0) throw new ConfigValidationError(problems);
}

async function caBundleProblem(path: string | undefined): Promise<string | undefined> {
  if (!path) return undefined;
  try {
    const pem = await readFile(path, 'utf8');
    return pem.includes('-----BEGIN CERTIFICATE-----') ? undefined : `AWS_CA_BUNDLE: ${path} holds no PEM certificate`;
  } catch (err) {
    return `AWS_CA_BUNDLE: ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'read failed'})`;
  }
}

async function hostProblem(host: string): Promise<string | undefined> {
  try {
    await lookup(host);
    return undefined;
  } catch (err) {
    return `API_HOST: ${host} does not resolve to an address to listen on (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`;
  }
}

/** Makes `dir` one level at a time (a recursive mkdir spins under /proc), then proves it takes a file. */
async function dirProblem(variable: string, dir: string): Promise<string | undefined> {
  const target = resolve(dir);
  const missing: string[] = [];
  let existing = target;
  for (;;) {
    const st = await stat(existing).catch((err: NodeJS.ErrnoException) => err);
    if (!(st instanceof Error)) {
      if (!st.isDirectory()) return `${variable}: ${target} cannot be a folder: ${existing} is a file`;
      break;
    }
    // Under a file (ENOTDIR): walk up to it, so that the message names it.
    if (st.code !== 'ENOENT' && st.code !== 'ENOTDIR') return `${variable}: ${existing} cannot be read (${st.code})`;
    missing.unshift(existing);
    if (dirname(existing) === existing) break;
    existing = dirname(existing);
  }
  for (const folder of missing) {
    const made = await mkdir(folder).catch((err: NodeJS.ErrnoException) => err);
    if (made instanceof Error && made.code !== 'EEXIST') return `${variable}: ${folder} cannot be created (${made.code})`;
  }
  const probe = join(target, `.write-check-${process.pid}`);
  try {
    await writeFile(probe, '');
    await rm(probe, { force: true });
    return undefined;
  } catch (err) {
    return `${variable}: ${target} does not take a file (${(err as NodeJS.ErrnoException).code})`;
  }
}

async function diskProblem(dir: string, minFreeBytes: number): Promise<string | undefined> {
  const fs = await statfs(dir).catch(() => undefined);
  if (!fs) return undefined;
  const total = fs.blocks * fs.bsize;
  if (minFreeBytes <= total) return undefined;
  return `MIN_FREE_DISK_MB: ${Math.round(minFreeBytes / MiB)} MB is more than the whole disk of LOCAL_DOWNLOAD_DIR (${Math.floor(total / MiB)} MB): no sync could ever run`;
}

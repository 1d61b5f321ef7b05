import { rmSync } from 'node:fs';

export default async function globalTeardown() {
  await globalThis.__S3_EMULATOR__?.stop();
  await new Promise((resolve) => (globalThis.__DYNALITE__ ? globalThis.__DYNALITE__.close(resolve) : resolve()));
  if (process.env.TEST_TMP_ROOT) rmSync(process.env.TEST_TMP_ROOT, { recursive: true, force: true });
}

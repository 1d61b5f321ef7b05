import { rmSync } from 'node:fs';

export default async function globalTeardown() {
  await globalThis.__S3_EMULATOR__?.stop();
  if (process.env.TEST_TMP_ROOT) rmSync(process.env.TEST_TMP_ROOT, { recursive: true, force: true });
}

export default async function globalTeardown() {
  await globalThis.__S3_EMULATOR__?.stop();
}

// The S3 emulator in its own process, so that it has a core of its own and every tool measured
// meets the same server. Prints {"endpoint": ...} once ready; stops on SIGTERM.
import { startEmulator } from '../test/support/emulator.mjs';

const emulator = await startEmulator({ port: Number(process.env.PORT ?? 0) });
for (const name of (process.env.BUCKETS ?? '').split(',').filter(Boolean)) emulator.server.createBucket(name);
process.stdout.write(`${JSON.stringify({ endpoint: emulator.endpoint })}\n`);
process.on('SIGTERM', () => void emulator.stop().then(() => process.exit(0)));

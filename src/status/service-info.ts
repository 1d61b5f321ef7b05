import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { name: string; version: string };
export const SERVICE_NAME = pkg.name;
export const SERVICE_VERSION = pkg.version;

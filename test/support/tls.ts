import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A self-signed certificate for 127.0.0.1 (and `dnsNames`), made by openssl in `dir`: the server's
 * key and certificate, and the certificate's path, which a client trusts as its private CA.
 */
export function loopbackCertificate(
  dir: string,
  commonName = 'localhost',
  dnsNames: readonly string[] = [],
): { key: Buffer; cert: Buffer; certPath: string } {
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'subjectAltName=' + ['IP:127.0.0.1', ...dnsNames.map((name) => `DNS:${name}`)].join(','),
    ].concat(['-keyout', keyPath, '-out', certPath]),
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath };
}

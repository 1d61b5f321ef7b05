import { runInNewContext } from 'node:vm';
import { S3RequestError } from '../aws/s3-errors';
import { LoginError } from '../auth/token.provider';
import { PermanentDeliveryError, TransientDeliveryError } from '../delivery/http-delivery';
import { ConflictError, IntegrityError, ShuttingDownError } from './errors';
import { isNetworkOrTimeoutError, isRetryable, isRetryableStatus } from './retryable';

describe('isRetryableStatus', () => {
  it.each([
    [408, true],
    [429, true],
    [500, true],
    [503, true],
    [599, true],
    [200, false],
    [400, false],
    [401, false],
    [404, false],
    [413, false],
  ])('%i -> %s', (status, expected) => expect(isRetryableStatus(status)).toBe(expected));
});

describe('isNetworkOrTimeoutError', () => {
  const withCode = (code: string) => Object.assign(new Error(code), { code });
  it('takes dropped connections, failed lookups and timeouts', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET']) {
      expect(isNetworkOrTimeoutError(withCode(code))).toBe(true);
    }
    expect(isNetworkOrTimeoutError(Object.assign(new Error('t'), { name: 'TimeoutError' }))).toBe(true);
    expect(isNetworkOrTimeoutError(new DOMException('late', 'TimeoutError'))).toBe(true);
    expect(
      isNetworkOrTimeoutError(Object.assign(new Error('a'), { name: 'AbortError', cause: new DOMException('late', 'TimeoutError') })),
    ).toBe(true);
  });

  it('refuses an abort that is not a timeout, file errors, and non-errors', () => {
    expect(isNetworkOrTimeoutError(Object.assign(new Error('a'), { name: 'AbortError', cause: new Error('shutting down') }))).toBe(false);
    expect(isNetworkOrTimeoutError(withCode('ENOENT'))).toBe(false);
    expect(isNetworkOrTimeoutError('ECONNRESET')).toBe(false);
    expect(isNetworkOrTimeoutError(undefined)).toBe(false);
  });

  it('recognises errors from another realm', () => {
    const foreign = runInNewContext("Object.assign(new Error('x'), { code: 'ECONNRESET' })") as unknown;
    expect(foreign instanceof Error).toBe(false);
    expect(isNetworkOrTimeoutError(foreign)).toBe(true);
  });
});

describe('isRetryable', () => {
  it("reads the service's own errors' flag", () => {
    expect(isRetryable(new IntegrityError('bad body'))).toBe(true);
    expect(isRetryable(new ShuttingDownError())).toBe(true);
    expect(isRetryable(new ConflictError('clash'))).toBe(false);
    expect(isRetryable(new S3RequestError(503, 'SlowDown', 'slow down'))).toBe(true);
    expect(isRetryable(new S3RequestError(400, 'SlowDown', 'throttled as 400'))).toBe(true);
    expect(isRetryable(new S3RequestError(403, 'AccessDenied', 'denied'))).toBe(false);
    expect(isRetryable(new TransientDeliveryError('503', 503))).toBe(true);
    expect(isRetryable(new PermanentDeliveryError('400', 400))).toBe(false);
    expect(isRetryable(new LoginError('login failed'))).toBe(true);
  });

  it('falls back to the shape of a network error or a timeout for anything else', () => {
    expect(isRetryable(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isRetryable(new Error('a bug'))).toBe(false);
    expect(isRetryable(runInNewContext('({ retryable: true })'))).toBe(true);
  });
});

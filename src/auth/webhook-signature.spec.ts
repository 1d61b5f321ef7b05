import { computeSignature, SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER, verifyWebhook } from './webhook-signature';

const secret = 'a-webhook-secret-of-some-length';
const body = Buffer.from('{"Records":[]}');
const now = Date.parse('2026-11-23T10:00:00Z');

function headersOf(signed: Record<string, string>) {
  return { signature: signed[SIGNATURE_HEADER], timestamp: signed[TIMESTAMP_HEADER] };
}

describe('webhook signature', () => {
  it('accepts what signWebhook produced', () => {
    expect(verifyWebhook([secret], headersOf(signWebhook(secret, body, now)), body, now + 1000, 300)).toMatchObject({ ok: true });
  });

  it('matches a known HMAC-SHA256 value', () => {
    // printf 'v1:1700000000:hello' | openssl dgst -sha256 -hmac key
    expect(computeSignature('key', 1700000000, 'hello')).toBe('ee4583d15b356f4bde6beb016b036f6750a61b64abbc540c9ce21b8c364777d0');
    expect(computeSignature('key', 1700000000, Buffer.from('hello'))).toBe(
      'ee4583d15b356f4bde6beb016b036f6750a61b64abbc540c9ce21b8c364777d0',
    );
  });

  it('refuses a changed body, a wrong secret, a missing header', () => {
    const h = headersOf(signWebhook(secret, body, now));
    expect(verifyWebhook([secret], h, Buffer.from('{"Records":[1]}'), now, 300)).toEqual({
      ok: false,
      reason: expect.stringContaining('does not match'),
    });
    expect(verifyWebhook(['another-secret-entirely'], h, body, now, 300).ok).toBe(false);
    expect(verifyWebhook([secret], { timestamp: h.timestamp }, body, now, 300)).toEqual({
      ok: false,
      reason: expect.stringContaining('missing'),
    });
    expect(verifyWebhook([secret], { ...h, signature: 'v1=zz' }, body, now, 300).ok).toBe(false);
    expect(verifyWebhook([secret], { ...h, timestamp: 'soon' }, body, now, 300).ok).toBe(false);
  });

  it('refuses a timestamp outside the window, either way, even when correctly signed', () => {
    const old = headersOf(signWebhook(secret, body, now - 301_000));
    const future = headersOf(signWebhook(secret, body, now + 301_000));
    expect(verifyWebhook([secret], old, body, now, 300)).toEqual({ ok: false, reason: expect.stringContaining('window') });
    expect(verifyWebhook([secret], future, body, now, 300).ok).toBe(false);
    expect(verifyWebhook([secret], headersOf(signWebhook(secret, body, now - 299_000)), body, now, 300).ok).toBe(true);
  });

  it('refuses a timestamp moved forward with the old signature', () => {
    const h = headersOf(signWebhook(secret, body, now));
    expect(verifyWebhook([secret], { ...h, timestamp: String(Number(h.timestamp) + 1) }, body, now, 300).ok).toBe(false);
  });

  it('accepts any one of several signatures (secret rotation)', () => {
    const h = headersOf(signWebhook(secret, body, now));
    const other = signWebhook('the-previous-secret-value', body, now)[SIGNATURE_HEADER];
    expect(verifyWebhook([secret], { ...h, signature: `${other}, ${h.signature}` }, body, now, 300).ok).toBe(true);
  });

  it('accepts a signature made with any one of the receiver secrets (the current and the previous)', () => {
    const byPrevious = headersOf(signWebhook('the-previous-secret-value', body, now));
    expect(verifyWebhook([secret, 'the-previous-secret-value'], byPrevious, body, now, 300).ok).toBe(true);
    expect(verifyWebhook([secret], byPrevious, body, now, 300).ok).toBe(false);
  });
});

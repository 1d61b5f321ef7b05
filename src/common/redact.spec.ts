import { redactDeep, redactUrl } from './redact';

describe('redactUrl', () => {
  it.each([
    ['https://user:pass@host.example.com/path', 'https://[redacted]@host.example.com/path'],
    ['https://host.example.com/in?token=abc&token=def&x=1', 'https://host.example.com/in?token=[redacted]&x=[redacted]'],
    ['http://127.0.0.1:8080/calls', 'http://127.0.0.1:8080/calls'],
    ['not a url', 'not a url'],
  ])('%s -> %s', (input, expected) => expect(redactUrl(input)).toBe(expected));
});

describe('redactDeep', () => {
  it('walks objects and arrays, keeps dates and numbers, masks the longest secret first', () => {
    const at = new Date(0);
    expect(
      redactDeep({ a: ['x secret-long y', 3], b: { c: 'secret', d: at, e: null, f: 'https://u:p@h/' } }, ['secret', 'secret-long', 'ab']),
    ).toEqual({ a: ['x [redacted] y', 3], b: { c: '[redacted]', d: at, e: null, f: 'https://[redacted]@h/' } });
  });
});

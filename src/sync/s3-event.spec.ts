import { eventBridge, notification, s3Record, snsEnvelope, testEvent } from '../../test/support/s3-events';
import { compareSequencers, decodeS3EventKey, encodeS3EventKey, EventShapeError, parseNotification, RecordResult } from './s3-event';

const changes = (results: RecordResult[]) => results.flatMap((r) => (r.status === 'change' ? [r.change] : []));

describe('parseNotification', () => {
  it('reads an S3 notification with several records', () => {
    const body = notification(
      { bucket: 'b', key: 'a/one.json', op: 'put', size: 12, etag: 'abc', sequencer: '0055AED6DCD90281E5' },
      { bucket: 'b', key: 'a/two.json', op: 'delete', sequencer: '0055AED6DCD90281E6', eventName: 'ObjectRemoved:DeleteMarkerCreated' },
    );
    expect(changes(parseNotification(body))).toEqual([
      expect.objectContaining({
        bucket: 'b',
        key: 'a/one.json',
        op: 'put',
        size: 12,
        etag: 'abc',
        sequencer: '0055AED6DCD90281E5',
        eventName: 'ObjectCreated:Put',
      }),
      expect.objectContaining({ key: 'a/two.json', op: 'delete', eventName: 'ObjectRemoved:DeleteMarkerCreated' }),
    ]);
  });

  it.each([
    ['space as +', 'red flower.jpg', 'red+flower.jpg'],
    ['literal +', 'c++/a+b.txt', 'c%2B%2B/a%2Bb.txt'],
    ['literal %', '100%/x', '100%25/x'],
    ['non-ASCII', 'données/été 2026.jsonl', 'donn%C3%A9es/%C3%A9t%C3%A9+2026.jsonl'],
    ['encoded slash and colon', 'test/10:47:07.log', 'test%2F10%3A47%3A07.log'],
  ])('decodes keys the way S3 encodes them (%s)', (_name, key, encoded) => {
    const record = s3Record({ bucket: 'b', key: 'x', op: 'put' });
    (record.s3 as { object: { key: string } }).object.key = encoded;
    expect(changes(parseNotification({ Records: [record] }))[0].key).toBe(key);
    expect(decodeS3EventKey(encodeS3EventKey(key))).toBe(key);
  });

  it('rejects a record whose key is not valid URL encoding, and keeps the others', () => {
    const bad = s3Record({ bucket: 'b', key: 'x', op: 'put' });
    (bad.s3 as { object: { key: string } }).object.key = 'bad%E0%A4%A';
    const results = parseNotification({ Records: [bad, s3Record({ bucket: 'b', key: 'ok', op: 'put' })] });
    expect(results[0]).toEqual(expect.objectContaining({ status: 'rejected', reason: expect.stringContaining('not valid URL encoding') }));
    expect(results[1].status).toBe('change');
  });

  it('unwraps an SNS notification, and SNS or SQS records of a Lambda event', () => {
    const inner = notification({ bucket: 'b', key: 'k 1', op: 'put' });
    expect(changes(parseNotification(snsEnvelope(inner)))[0].key).toBe('k 1');
    const lambdaSqs = { Records: [{ eventSource: 'aws:sqs', messageId: 'm1', body: JSON.stringify(snsEnvelope(inner)) }] };
    expect(changes(parseNotification(lambdaSqs))[0].key).toBe('k 1');
    const lambdaSns = { Records: [{ EventSource: 'aws:sns', Sns: { Message: JSON.stringify(inner) } }] };
    expect(changes(parseNotification(lambdaSns))[0].key).toBe('k 1');
  });

  it('reads EventBridge Object Created / Object Deleted, with keys as they are', () => {
    expect(changes(parseNotification(eventBridge({ bucket: 'b', key: 'a b+c.txt', op: 'put', size: 3, sequencer: '00AB' })))).toEqual([
      expect.objectContaining({ key: 'a b+c.txt', op: 'put', size: 3, sequencer: '00AB', eventName: 'Object Created' }),
    ]);
    expect(changes(parseNotification(eventBridge({ bucket: 'b', key: 'k', op: 'delete' })))[0].op).toBe('delete');
    const tags = { ...eventBridge({ bucket: 'b', key: 'k', op: 'put' }), 'detail-type': 'Object Tags Added' };
    expect(parseNotification(tags)[0]).toEqual(expect.objectContaining({ status: 'ignored' }));
  });

  it('acknowledges the s3:TestEvent and SNS confirmations without a change', () => {
    expect(parseNotification(testEvent('b'))).toEqual([{ status: 'ignored', reason: expect.stringContaining('s3:TestEvent') }]);
    expect(parseNotification({ Type: 'SubscriptionConfirmation', SubscribeURL: 'https://x' })[0].status).toBe('ignored');
  });

  it('treats lifecycle expiration as a delete, a completed restore as a readable version, and ignores events that do not change content', () => {
    const expire = s3Record({ bucket: 'b', key: 'k', op: 'delete', eventName: 'LifecycleExpiration:Delete' });
    const restoring = s3Record({ bucket: 'b', key: 'k', op: 'put', eventName: 'ObjectRestore:Post' });
    const restored = s3Record({ bucket: 'b', key: 'k', op: 'put', eventName: 'ObjectRestore:Completed' });
    const [a, b, c] = parseNotification({ Records: [expire, restoring, restored] });
    expect(a).toEqual(expect.objectContaining({ status: 'change', change: expect.objectContaining({ op: 'delete' }) }));
    expect(b).toEqual(expect.objectContaining({ status: 'ignored', key: 'k' }));
    expect(c).toEqual(expect.objectContaining({ status: 'change', change: expect.objectContaining({ op: 'put' }) }));
  });

  it('accepts the s3: prefix on event names', () => {
    const r = s3Record({ bucket: 'b', key: 'k', op: 'put', eventName: 's3:ObjectCreated:CompleteMultipartUpload' });
    expect(changes(parseNotification({ Records: [r] }))[0].eventName).toBe('ObjectCreated:CompleteMultipartUpload');
  });

  it.each([
    ['an array', []],
    ['a string', 'hello'],
    ['null', null],
    ['an unknown object', { hello: 'world' }],
    ['SNS with a non-JSON message', { Type: 'Notification', Message: 'not json' }],
    ['SNS without a message', { Type: 'Notification' }],
  ])('throws EventShapeError for %s', (_name, body) => {
    expect(() => parseNotification(body)).toThrow(EventShapeError);
  });

  it('rejects malformed records one by one', () => {
    const noKey = s3Record({ bucket: 'b', key: 'k', op: 'put' });
    delete (noKey.s3 as { object: Record<string, unknown> }).object.key;
    const v1 = { ...s3Record({ bucket: 'b', key: 'k', op: 'put' }), eventVersion: '1.0' };
    const badSqs = { eventSource: 'aws:sqs', body: '{' };
    const results = parseNotification({ Records: [noKey, v1, 42, badSqs] });
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect(results.map((r) => (r.status === 'rejected' ? r.reason : ''))).toEqual([
      expect.stringContaining('s3.object.key'),
      expect.stringContaining('eventVersion'),
      expect.stringContaining('not an object'),
      expect.stringContaining('not valid JSON'),
    ]);
  });

  it('drops a size that is not a count', () => {
    const r = s3Record({ bucket: 'b', key: 'k', op: 'put' });
    Object.assign((r.s3 as { object: Record<string, unknown> }).object, { size: -1 });
    const [c] = changes(parseNotification({ Records: [r] }));
    expect(c.size).toBeUndefined();
  });

  it.each(['xyz', 'F'.repeat(33), 'F'.repeat(200)])(
    'refuses the record of a sequencer that is not hex of at most 32 digits: %s',
    (sequencer) => {
      const r = s3Record({ bucket: 'b', key: 'k', op: 'put' });
      Object.assign((r.s3 as { object: Record<string, unknown> }).object, { sequencer });
      expect(parseNotification({ Records: [r] })).toEqual([
        expect.objectContaining({ status: 'rejected', reason: 'sequencer must be hex of at most 32 digits' }),
      ]);
    },
  );
});

describe('compareSequencers', () => {
  it.each([
    ['0055AED6DCD90281E5', '0055AED6DCD90281E6', -1],
    ['0055AED6DCD90281E6', '0055AED6DCD90281E5', 1],
    ['0055AED6DCD90281E5', '0055AED6DCD90281E5', 0],
    // Different lengths: the shorter is left-padded, so it is the smaller when its digits are.
    ['FF', '0100', -1],
    ['100', 'FF', 1],
    ['00ff', 'FF', 0],
    ['0055aed6dcd90281e5', '0055AED6DCD90281E5', 0],
  ])('%s vs %s -> %i', (a, b, expected) => {
    expect(Math.sign(compareSequencers(a, b))).toBe(expected);
  });
});

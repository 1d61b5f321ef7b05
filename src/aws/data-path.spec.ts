import { chooseDataPath, type DataPathInput } from './data-path';

const input = (over: Partial<DataPathInput> = {}): DataPathInput => ({
  setting: 'auto',
  bucket: 'mirror-bucket',
  region: 'eu-west-1',
  fips: false,
  dualStack: false,
  ...over,
});

describe('chooseDataPath', () => {
  it('takes the signed GETs for amazonaws.com regions and for any configured endpoint', () => {
    expect(chooseDataPath(input())).toEqual({ kind: 'fast', reason: 'amazonaws.com in eu-west-1' });
    expect(chooseDataPath(input({ region: 'ap-southeast-5' })).kind).toBe('fast');
    expect(chooseDataPath(input({ region: 'cn-north-1', endpoint: 'https://minio.corp:9000' }))).toEqual({
      kind: 'fast',
      reason: 'the endpoint https://minio.corp:9000',
    });
  });

  it.each([
    [{ bucket: 'fast-data--usw2-az1--x-s3' }, /directory bucket/],
    [{ region: 'cn-north-1' }, /cn-north-1 is outside the aws partition/],
    [{ region: 'cn-northwest-1' }, /outside the aws partition/],
    [{ region: 'us-gov-west-1' }, /outside the aws partition/],
    [{ region: 'us-iso-east-1' }, /outside the aws partition/],
    [{ fips: true }, /AWS_USE_FIPS_ENDPOINT/],
    [{ dualStack: true }, /AWS_USE_DUALSTACK_ENDPOINT/],
    [{ setting: 'sdk' as const }, /S3_DATA_PATH=sdk/],
  ])('goes through the SDK for what the signed GETs do not model: %o', (over, reason) => {
    const path = chooseDataPath(input(over));
    expect(path.kind).toBe('sdk');
    expect(path.reason).toMatch(reason);
  });

  it('refuses S3_DATA_PATH=fast where the signed GETs cannot serve, and honours it elsewhere', () => {
    expect(() => chooseDataPath(input({ setting: 'fast', region: 'cn-north-1' }))).toThrow(/cannot serve this bucket: region cn-north-1/);
    expect(chooseDataPath(input({ setting: 'fast' }))).toEqual({ kind: 'fast', reason: 'S3_DATA_PATH=fast' });
  });
});

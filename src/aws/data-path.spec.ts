import { chooseDataPath, isAccessPoint, isAccessPointArn, listsInKeyOrder, type DataPathInput } from './data-path';

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
    [{ bucket: 'fast-ap--usw2-az1--xa-s3' }, /directory bucket/],
    [{ bucket: 'arn:aws:s3:eu-west-1:123456789012:accesspoint/reports' }, /access point ARN/],
    [{ bucket: 'arn:aws:s3:eu-west-1:123456789012:accesspoint/reports', endpoint: 'https://s3.corp' }, /access point ARN/],
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

  it('knows the access point ARNs S3 takes in place of a bucket name, and nothing else', () => {
    for (const arn of [
      'arn:aws:s3:eu-west-1:123456789012:accesspoint/reports',
      'arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/reports',
      'arn:aws-us-gov:s3:us-gov-west-1:123456789012:accesspoint/reports',
      'arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap',
      'arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01234567890123456/accesspoint/reports',
      'arn:aws:s3-object-lambda:eu-west-1:123456789012:accesspoint/redacting',
    ]) {
      expect([arn, isAccessPointArn(arn)]).toEqual([arn, true]);
    }
    for (const other of [
      'reports',
      'arn:aws:s3:::my-bucket',
      'arn:aws:s3:eu-west-1:12345:accesspoint/reports',
      'arn:aws:s3:eu-west-1:123456789012:accesspoint/Reports',
      'arn:aws:s3:eu-west-1:123456789012:accesspoint/reports/object/key',
      'arn:aws:iam::123456789012:role/reports',
    ]) {
      expect([other, isAccessPointArn(other)]).toEqual([other, false]);
    }
  });

  it('knows an access point by its alias too, which S3 takes as a bucket name', () => {
    expect(isAccessPoint('reports-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias')).toBe(true);
    expect(isAccessPoint('reports-ab12cd34ef56gh78ij90kl12mn34op56qr--op-s3')).toBe(true);
    expect(isAccessPoint('arn:aws:s3:eu-west-1:123456789012:accesspoint/reports')).toBe(true);
    expect(isAccessPoint('reports-bucket')).toBe(false);
  });

  it("expects key order from every listing but a directory bucket's", () => {
    expect(listsInKeyOrder('arn:aws:s3:eu-west-1:123456789012:accesspoint/reports')).toBe(true);
    expect(listsInKeyOrder('fast-data--usw2-az1--x-s3')).toBe(false);
    expect(listsInKeyOrder('fast-ap--usw2-az1--xa-s3')).toBe(false);
  });

  it('refuses S3_DATA_PATH=fast where the signed GETs cannot serve, and honours it elsewhere', () => {
    expect(() => chooseDataPath(input({ setting: 'fast', region: 'cn-north-1' }))).toThrow(/cannot serve this bucket: region cn-north-1/);
    expect(chooseDataPath(input({ setting: 'fast' }))).toEqual({ kind: 'fast', reason: 'S3_DATA_PATH=fast' });
  });
});

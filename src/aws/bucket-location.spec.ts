import { bucketLocation, regionOfRedirect } from './s3.repository';

const where = (s3: Parameters<typeof bucketLocation>[0]) => {
  const { baseUrl, pathPrefix, bucketPath } = bucketLocation(s3);
  return { origin: baseUrl.origin, pathPrefix, bucketPath };
};

describe('bucketLocation (how S3 requests are addressed, as the SDK does)', () => {
  it('puts the bucket in the host of AWS’s regional endpoint', () => {
    expect(where({ bucket: 'logs', region: 'eu-west-1', forcePathStyle: false })).toEqual({
      origin: 'https://logs.s3.eu-west-1.amazonaws.com',
      pathPrefix: '/',
      bucketPath: '/',
    });
  });

  it('uses path style for a bucket with dots, which a virtual host would break under TLS', () => {
    expect(where({ bucket: 'logs.example.com', region: 'eu-west-1', forcePathStyle: false })).toEqual({
      origin: 'https://s3.eu-west-1.amazonaws.com',
      pathPrefix: '/logs.example.com/',
      bucketPath: '/logs.example.com',
    });
  });

  it('puts the bucket in the host of a custom endpoint when path style is off', () => {
    expect(where({ bucket: 'logs', region: 'auto', endpoint: 'https://minio.example:9000', forcePathStyle: false })).toEqual({
      origin: 'https://logs.minio.example:9000',
      pathPrefix: '/',
      bucketPath: '/',
    });
  });

  it('keeps a custom endpoint’s base path under path style', () => {
    expect(where({ bucket: 'logs', region: 'auto', endpoint: 'http://127.0.0.1:4566/s3/', forcePathStyle: true })).toEqual({
      origin: 'http://127.0.0.1:4566',
      pathPrefix: '/s3/logs/',
      bucketPath: '/s3/logs',
    });
  });
});

describe('regionOfRedirect', () => {
  it('reads the region from x-amz-bucket-region or the error document of a wrong-region answer', () => {
    expect(regionOfRedirect(301, 'PermanentRedirect', { 'x-amz-bucket-region': 'eu-west-1' }, '')).toBe('eu-west-1');
    expect(regionOfRedirect(307, 'TemporaryRedirect', { 'x-amz-bucket-region': 'ap-southeast-2' }, '')).toBe('ap-southeast-2');
    expect(
      regionOfRedirect(
        400,
        'AuthorizationHeaderMalformed',
        {},
        '<Error><Code>AuthorizationHeaderMalformed</Code><Region>us-gov-west-1</Region></Error>',
      ),
    ).toBe('us-gov-west-1');
  });

  it('ignores other refusals and anything that is not a region name', () => {
    expect(regionOfRedirect(400, 'InvalidArgument', { 'x-amz-bucket-region': 'eu-west-1' }, '')).toBeUndefined();
    expect(regionOfRedirect(403, 'AccessDenied', { 'x-amz-bucket-region': 'eu-west-1' }, '')).toBeUndefined();
    expect(regionOfRedirect(301, 'PermanentRedirect', { 'x-amz-bucket-region': 'evil.example.com/x' }, '')).toBeUndefined();
    expect(regionOfRedirect(301, 'PermanentRedirect', {}, '')).toBeUndefined();
  });
});

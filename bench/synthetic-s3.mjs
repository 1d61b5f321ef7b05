// A synthetic S3 endpoint for bench/scale.mjs: a bucket of SCALE_KEYS generated objects
// (bench/synthetic-keys.mjs) with nothing stored, fast enough not to be what a benchmark measures:
// a page of 1,000 keys costs it about 2 ms, a GET a few microseconds. Serves ListObjectsV2 and
// ListObjects (prefix, delimiter, continuation-token, start-after, marker, encoding-type), GET (with
// Range) and HEAD of objects, HeadBucket and GetBucketLocation, path style, without checking
// signatures. Prints {"endpoint": ...} once listening, like the other bench helpers.
//   SCALE_KEYS=1000000  SCALE_BUCKET=scale  SCALE_LAST_MODIFIED=2026-01-01T00:00:00.000Z
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { keySpace } from './synthetic-keys.mjs';

const BUCKET = process.env.SCALE_BUCKET ?? 'scale';
const LAST_MODIFIED = new Date(process.env.SCALE_LAST_MODIFIED ?? '2026-01-01T00:00:00.000Z');
const space = keySpace(Number(process.env.SCALE_KEYS ?? 1_000_000), randomBytes(1024));
const { keyOf, sizeOf, keys: KEYS } = space;

const xml = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const httpDate = LAST_MODIFIED.toUTCString();
const isoDate = LAST_MODIFIED.toISOString();

function list(params, res) {
  const v2 = params.get('list-type') === '2';
  const prefix = params.get('prefix') ?? '';
  const delimiter = params.get('delimiter') ?? '';
  const maxKeys = Math.min(1000, Number(params.get('max-keys') ?? 1000));
  const urlEncoded = params.get('encoding-type') === 'url';
  const after = v2 ? (params.get('continuation-token') ?? params.get('start-after') ?? '') : (params.get('marker') ?? '');
  const enc = (s) => (urlEncoded ? encodeURIComponent(s).replace(/%2F/g, '/') : xml(s));
  // A page that ended on a common prefix resumes past every key under it.
  const resume = delimiter && after.endsWith(delimiter) ? `${after}\u{10ffff}` : after;
  let i = Math.max(space.firstAfter(prefix, true), after ? space.firstAfter(resume) : 0);
  const parts = [];
  let count = 0;
  let last = '';
  while (i < KEYS && count < maxKeys) {
    const key = keyOf(i);
    if (!key.startsWith(prefix)) break;
    const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    if (cut >= 0) {
      const common = key.slice(0, cut + delimiter.length);
      parts.push(`<CommonPrefixes><Prefix>${enc(common)}</Prefix></CommonPrefixes>`);
      last = common;
      // Past every key under this common prefix.
      i = space.firstAfter(`${common}\u{10ffff}`);
    } else {
      parts.push(
        `<Contents><Key>${enc(key)}</Key><LastModified>${isoDate}</LastModified><ETag>&quot;${space.md5Of(i)}&quot;</ETag><Size>${sizeOf(i)}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      );
      last = key;
      i++;
    }
    count++;
  }
  const truncated = i < KEYS && keyOf(i).startsWith(prefix);
  const next = truncated
    ? v2
      ? `<NextContinuationToken>${xml(last)}</NextContinuationToken>`
      : `<NextMarker>${enc(last)}</NextMarker>`
    : '';
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Name>${BUCKET}</Name><Prefix>${enc(prefix)}</Prefix>${delimiter ? `<Delimiter>${enc(delimiter)}</Delimiter>` : ''}` +
    `<MaxKeys>${maxKeys}</MaxKeys>${urlEncoded ? '<EncodingType>url</EncodingType>' : ''}` +
    (v2 ? `<KeyCount>${count}</KeyCount>` : `<Marker>${enc(after)}</Marker>`) +
    `<IsTruncated>${truncated}</IsTruncated>${next}${parts.join('')}</ListBucketResult>`;
  res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function error(res, status, code, message) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function object(req, res, key) {
  const i = space.indexOf(key);
  if (i < 0) return error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
  const body = space.bodyOf(i);
  const headers = {
    etag: `"${space.md5Of(i)}"`,
    'last-modified': httpDate,
    'content-type': 'application/json',
    'accept-ranges': 'bytes',
  };
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let status = 200;
  let slice = body;
  if (range) {
    const start = Number(range[1]);
    const end = Math.min(body.length - 1, range[2] ? Number(range[2]) : body.length - 1);
    if (start > end) return error(res, 416, 'InvalidRange', 'The requested range is not satisfiable');
    slice = body.subarray(start, end + 1);
    headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
    status = 206;
  }
  headers['content-length'] = slice.length;
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : slice);
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://synthetic');
  const [, bucket, ...rest] = url.pathname.split('/');
  if (decodeURIComponent(bucket) !== BUCKET) return error(res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  const key = rest.map(decodeURIComponent).join('/');
  if (key) return req.method === 'GET' || req.method === 'HEAD' ? object(req, res, key) : error(res, 405, 'MethodNotAllowed', 'read-only');
  if (req.method === 'HEAD') return res.writeHead(200, { 'x-amz-bucket-region': 'us-east-1' }).end();
  if (url.searchParams.has('location')) {
    const body = '<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>';
    res.writeHead(200, { 'content-type': 'application/xml' });
    return res.end(body);
  }
  return list(url.searchParams, res);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ endpoint: `http://127.0.0.1:${server.address().port}`, bucket: BUCKET, keys: KEYS })}\n`);
});
process.on('SIGTERM', () => process.exit(0));

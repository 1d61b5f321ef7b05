// The downstream for the delivery benchmark, in its own process: takes batches, answers 200, counts
// records. Prints {"url": ...} once ready; GET /count answers {"records": n, "batches": n}.
import { createServer } from 'node:http';

let records = 0;
let batches = 0;
const server = createServer((req, res) => {
  if (req.method === 'GET')
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ records, batches }));
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString());
    records += body.batchSize;
    batches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`));
process.on('SIGTERM', () => process.exit(0));

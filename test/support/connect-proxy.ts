import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

/**
 * A forward proxy on 127.0.0.1 that answers CONNECT: it records each request and opens every
 * tunnel to the loopback port `to()` gives, whatever host was asked for, so names that resolve
 * nowhere (AWS's own, say) reach a local server. `refuse` may answer a request instead (a 407).
 */
export async function startConnectProxy(options: {
  to: () => number;
  refuse?: (req: http.IncomingMessage) => string | undefined;
}): Promise<{ url: string; connects: http.IncomingMessage[]; close(): Promise<void> }> {
  const connects: http.IncomingMessage[] = [];
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: net.Socket) => {
    connects.push(req);
    const refusal = options.refuse?.(req);
    if (refusal) return void client.end(refusal);
    const upstream = net.connect(options.to(), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connects,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A bad link between a node and osbake serve, for the network-install tests: an HTTP proxy on
 * 127.0.0.1 that passes every request on unchanged (the Host header too, so the node's scripts
 * point back at the proxy) and damages answers for the payload (payload.zst, or payload.bin):
 *   cuts:      the first `cuts` range answers longer than 1 MiB are cut off after 1 MiB (the TCP
 *              connection is closed mid-body, as a flaky link or a restarted server does);
 *   corruptAt: the byte at this payload offset is flipped in every answer that holds it.
 * Both at once: a link that cuts and corrupts.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultProxy {
  port: number;
  /** Answers cut and bytes flipped so far; payload bytes passed to the node. */
  stats: { cut: number; corrupted: number; requests: number; payloadBytes: number };
  close(): Promise<void>;
}

export async function startFaultProxy(
  upstreamPort: number,
  /** cuts: how many long range answers are cut; corruptAt: the payload offset flipped in every answer. */
  fault: { cuts?: number; corruptAt?: number },
): Promise<FaultProxy> {
  const stats = { cut: 0, corrupted: 0, requests: 0, payloadBytes: 0 };
  const server: Server = createServer((req, res) => {
    stats.requests++;
    const up = request(
      {
        host: '127.0.0.1',
        port: upstreamPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        const isPayload = /\/payload\.(bin|zst)$/.test(req.url ?? '');
        const range = /^bytes (\d+)-(\d+)\//.exec(String(upRes.headers['content-range'] ?? ''));
        const start = range ? Number(range[1]) : 0;
        const length = range ? Number(range[2]) - start + 1 : 0;
        let sent = 0;
        const cutThis = isPayload && length > 2 ** 20 && stats.cut < (fault.cuts ?? 0);
        if (cutThis) stats.cut++;
        upRes.on('data', (chunk: Buffer) => {
          let out = chunk;
          if (fault.corruptAt !== undefined && isPayload) {
            const i = fault.corruptAt - (start + sent);
            if (i >= 0 && i < chunk.length) {
              out = Buffer.from(chunk);
              out[i] = (out[i] ?? 0) ^ 0xff;
              stats.corrupted++;
            }
          }
          if (cutThis && sent + out.length >= 2 ** 20) {
            if (isPayload) stats.payloadBytes += 2 ** 20 - sent;
            res.write(out.subarray(0, 2 ** 20 - sent));
            upRes.destroy();
            res.socket?.destroy();
            return;
          }
          sent += out.length;
          if (isPayload) stats.payloadBytes += out.length;
          res.write(out);
        });
        upRes.on('end', () => res.end());
        upRes.on('error', () => res.destroy());
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

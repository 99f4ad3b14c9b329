/** A plain Node HTTP origin on a loopback port, for the tests that put nginx or the proxy in front of one. */
import { createServer, type RequestListener } from 'node:http';
import { freePort } from '../harness';

export interface Origin {
  port: number;
  /** Stops listening and drops open (keep-alive) connections. */
  stop: () => Promise<void>;
}

/** `port`: pass one when the gateway's ROUTES must name the origin before it starts; a free one otherwise. */
export async function startOrigin(handler: RequestListener, port?: number): Promise<Origin> {
  const listenOn = port ?? (await freePort());
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(listenOn, '127.0.0.1', () => r()));
  const stop = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return { port: listenOn, stop };
}

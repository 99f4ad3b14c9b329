/**
 * The proxy over real HTTP (wrangler dev -> a Node origin): a large request body streamed
 * through, an origin redirect passed back unchanged, and a WebSocket upgrade with the identity
 * headers on the handshake (Node's own WebSocket client, a hand-rolled server handshake).
 */
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, freePort, startGateway, type Gateway } from './harness';

let gw: Gateway;
let origin: Server;
const seen: { url: string; headers: IncomingHttpHeaders; bytes: number }[] = [];
let token = '';
let userId = '';
const sockets = new Set<import('node:stream').Duplex>();

beforeAll(async () => {
  const port = await freePort();
  origin = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      seen.push({ url: req.url!, headers: req.headers, bytes });
      if (req.url === '/app/moved') {
        res.writeHead(302, { location: 'https://elsewhere.example/landing?from=origin' });
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ bytes, method: req.method }));
    });
  });
  // RFC 6455 handshake, then one unmasked text frame "hello <user id>".
  origin.on('upgrade', (req, socket) => {
    sockets.add(socket);
    seen.push({ url: req.url!, headers: req.headers, bytes: 0 });
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    // On /app/planting the origin also tries to set the gateway's session cookie.
    const planted = req.url === '/app/planting' ? 'Set-Cookie: __Host-gatehouse=planted; Path=/; Secure; HttpOnly\r\nSet-Cookie: app=1; Path=/\r\n' : '';
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${planted}\r\n`);
    const text = Buffer.from(`hello ${String(req.headers['x-auth-user-id'])}`);
    socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => origin.listen(port, '127.0.0.1', () => r()));
  const routes = [{ path: '/app', origin: `http://127.0.0.1:${port}`, auth: 'required' }];
  gw = await startGateway({ vars: { ROUTES: JSON.stringify(routes) } });
  const reg = await new Client(gw.url).fetch('/auth/register', { method: 'POST', json: { email: `proxy-${Date.now()}@example.com`, password: 'an interop passphrase, long' } });
  expect(reg.status, gw.logs().slice(-4000)).toBe(201);
  const body = (await reg.json()) as { access_token: string; user: { id: string } };
  token = body.access_token;
  userId = body.user.id;
});
afterAll(async () => {
  await gw?.stop();
  for (const socket of sockets) socket.destroy();
  origin?.closeAllConnections();
  await new Promise((r) => (origin ? origin.close(r) : r(undefined)));
});

describe('proxy over real HTTP', () => {
  it('streams a 3 MiB request body to the origin', async () => {
    seen.length = 0;
    const size = 3 * 1024 * 1024;
    const r = await fetch(`${gw.url}/app/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(size).fill(7),
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ bytes: size, method: 'POST' });
    expect(seen[0]!.headers['x-auth-user-id']).toBe(userId);
    expect(seen[0]!.headers['authorization']).toBeUndefined();
  });

  it('passes an origin redirect back unchanged', async () => {
    const r = await fetch(`${gw.url}/app/moved`, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('https://elsewhere.example/landing?from=origin');
  });

  it('upgrades a WebSocket with the identity on the handshake; refuses one without a token', async () => {
    seen.length = 0;
    const wsUrl = gw.url.replace(/^http/, 'ws');
    // Node's WebSocket cannot set Authorization; the session cookie carries the token instead,
    // and Origin, as a browser sends it (a cookie handshake naming no site is refused).
    const ws = new WebSocket(`${wsUrl}/app/socket`, { headers: { cookie: `__Host-gatehouse=${token}`, origin: gw.url } } as unknown as string[]);
    const message = await new Promise<string>((resolve, reject) => {
      ws.addEventListener('message', (e) => resolve(String(e.data)));
      ws.addEventListener('error', () => reject(new Error('websocket error')));
    });
    ws.close();
    expect(message).toBe(`hello ${userId}`);
    expect(seen[0]!.headers['upgrade']).toBe('websocket');
    expect(seen[0]!.headers['cookie']).toBeUndefined();

    seen.length = 0;
    const refused = await new Promise<string>((resolve) => {
      const anon = new WebSocket(`${wsUrl}/app/socket`);
      anon.addEventListener('open', () => resolve('open'));
      anon.addEventListener('error', () => resolve('refused'));
    });
    expect(refused).toBe('refused');
    expect(seen).toHaveLength(0);
  });

  it('a 101 from the origin cannot set the gateway\'s cookies; the socket still carries frames', async () => {
    seen.length = 0;
    const { hostname, port } = new URL(gw.url);
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const { setCookie, firstBytes } = await new Promise<{ setCookie: string[]; firstBytes: Buffer }>((resolve, reject) => {
      const req = request({
        host: hostname,
        port,
        path: '/app/planting',
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13', cookie: `__Host-gatehouse=${token}`, origin: gw.url },
      });
      req.on('upgrade', (res, socket, head) => {
        // One unmasked text frame: 2 header bytes, then as many as the second byte says.
        let bytes = head;
        const check = () => {
          if (bytes.length < 2 || bytes.length < 2 + bytes[1]!) return;
          socket.destroy();
          resolve({ setCookie: res.headers['set-cookie'] ?? [], firstBytes: bytes });
        };
        socket.on('data', (chunk: Buffer) => {
          bytes = Buffer.concat([bytes, chunk]);
          check();
        });
        check();
      });
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    expect(setCookie).toEqual(['app=1; Path=/']);
    expect(firstBytes.subarray(2).toString()).toBe(`hello ${userId}`);
    expect(seen.map((s) => s.url)).toEqual(['/app/planting']);
  });
});

/**
 * A small MCP server built with the MCP TypeScript SDK (streamable HTTP, stateless: a server and
 * transport per request, as the SDK's stateless example does) on a loopback port, behind the
 * gateway in the MCP end-to-end test. Its one tool, `whoami`, answers with the identity headers
 * the gateway sent with the call, so the test sees what the origin saw. It records every
 * request's Authorization header too: the client's token must never reach it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { startOrigin, type Origin } from './origin';

export interface SeenByMcpServer {
  method: string;
  path: string;
  authorization: string | undefined;
  userEmail: string | undefined;
  clientId: string | undefined;
}

export interface McpOrigin extends Origin {
  url: string;
  seen: SeenByMcpServer[];
}

const header = (req: IncomingMessage, name: string) => {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

export async function startMcpServer(): Promise<McpOrigin> {
  const seen: SeenByMcpServer[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', authorization: header(req, 'authorization'), userEmail: header(req, 'x-auth-email'), clientId: header(req, 'x-auth-client-id') });
    const server = new McpServer({ name: 'gatehouse-e2e-mcp', version: '1.0.0' });
    server.registerTool('whoami', { description: 'Who the gateway says is calling, and through which OAuth client.' }, async () => ({
      content: [{ type: 'text', text: JSON.stringify({ email: header(req, 'x-auth-email') ?? null, user_id: header(req, 'x-auth-user-id') ?? null, client_id: header(req, 'x-auth-client-id') ?? null }) }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
  const origin = await startOrigin((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(e instanceof Error ? e.message : String(e));
    });
  });
  return { ...origin, url: `http://127.0.0.1:${origin.port}`, seen };
}

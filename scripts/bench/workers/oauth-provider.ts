// Peer: @cloudflare/workers-oauth-provider guarding a handler that proxies to the origin. The
// provider looks every access token up in KV (OAUTH_KV) and decrypts the grant's props before
// the handler runs. The provider is constructed once per isolate (module scope).
// Set-up only (not measured): /authorize approves every request for one bench user, so the
// runner can mint a real token through the provider's own flow (DCR, authorize, PKCE, token).
import { OAuthProvider, type OAuthHelpers } from '@cloudflare/workers-oauth-provider';

interface Env {
  ORIGIN: string;
  PUBLIC_URL: string;
  OAUTH_KV: KVNamespace;
  OAUTH_PROVIDER: OAuthHelpers;
}

const api = {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    // ctx.props is what completeAuthorization() stored for this grant (decrypted per request).
    const props = ctx.props;
    if (typeof props !== 'object' || props === null || !('userId' in props) || typeof props.userId !== 'string') {
      return new Response('no grant props', { status: 500 });
    }
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete('authorization');
    headers.set('x-auth-user-id', props.userId);
    return fetch(`${env.ORIGIN}${url.pathname}${url.search}`, { method: request.method, headers, body: request.body });
  },
};

const ui = {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (new URL(request.url).pathname !== '/authorize') return new Response('not found', { status: 404 });
    const authRequest = await env.OAUTH_PROVIDER.parseAuthRequest(request);
    const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
      request: authRequest,
      userId: 'bench-user',
      metadata: {},
      scope: authRequest.scope,
      props: { userId: 'bench-user' },
    });
    return Response.redirect(redirectTo, 302);
  },
};

let provider: OAuthProvider<Env> | undefined;

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    // The resource is the served origin (known only from env), so the provider is built on the
    // first request and kept for the isolate's life.
    provider ??= new OAuthProvider<Env>({
      apiRoute: '/bench/',
      apiHandler: api,
      defaultHandler: ui,
      authorizeEndpoint: '/authorize',
      tokenEndpoint: '/token',
      clientRegistrationEndpoint: '/register',
      resourceMetadata: { resource: `${env.PUBLIC_URL}/bench/`, authorization_servers: [env.PUBLIC_URL] },
    });
    return provider.fetch(request, env, ctx);
  },
};

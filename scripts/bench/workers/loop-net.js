// The loop bench's network (scripts/bench/loop.mjs): every outbound fetch of the Gatehouse
// Workers passes here (Miniflare's outboundService). Gatehouse runs as it deploys, so its
// provider and its notice targets must be https; the bench's provider and origin are plain
// HTTP servers on loopback. HOSTS maps each https origin the Worker is configured with to the
// loopback server standing for it, as TLS terminated in front of them would; anything else
// (the routes' own loopback origins) goes out unchanged.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const to = JSON.parse(env.HOSTS)[url.origin];
    if (!to) return fetch(request);
    return fetch(new Request(`${to}${url.pathname}${url.search}`, request));
  },
};

// Scenario (a): a pass-through Worker with no auth. Forwards method, path, query, headers and
// body to ORIGIN and returns the origin's response as is.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(`${env.ORIGIN}${url.pathname}${url.search}`, request);
  },
};

// Not a scenario: a stand-in for Gatehouse's REVOKED namespace that counts the reads, bound to
// Gatehouse over RPC for a short probe (never under load), so "KV reads per verified request"
// is counted, not inferred. Holds nothing: every key reads as absent (nothing revoked).
import { WorkerEntrypoint } from 'cloudflare:workers';

let reads = 0; // calls
let keysRead = 0; // keys asked for, across calls (a multi-key get asks for several)

export class CountingKv extends WorkerEntrypoint {
  async get(keys) {
    reads++;
    if (Array.isArray(keys)) {
      keysRead += keys.length;
      return new Map(keys.map((k) => [k, null]));
    }
    keysRead++;
    return null;
  }
  async getWithMetadata(keys) {
    reads++;
    keysRead += Array.isArray(keys) ? keys.length : 1;
    return Array.isArray(keys) ? new Map(keys.map((k) => [k, { value: null, metadata: null }])) : { value: null, metadata: null };
  }
  async put() {}
  async delete() {}
  async list() {
    return { keys: [], list_complete: true, cacheStatus: null };
  }
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/reset') reads = keysRead = 0;
    return Response.json({ reads, keys: keysRead });
  },
};

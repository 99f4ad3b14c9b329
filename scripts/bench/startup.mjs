// Start-up CPU with a finer profile than `wrangler check startup`: the same method (a fresh
// workerd, an entry that `import()`s the Worker's main module inside its first request, V8's CPU
// profiler over it, idle samples left out) but sampling every 50 µs instead of V8's default
// 1 ms. On this machine wrangler's profile holds only a handful of samples, each standing for
// whatever the thread did since the last one, so one slow sample decides its figure (an empty
// Worker reads anywhere from 0 to 45 ms). Each run is its own Miniflare (its own workerd and
// isolate); the median of `runs` is reported, next to the same figure for a one-line Worker.
export async function startupProfile({ Miniflare, modules, main, flags, runs, compatibilityDate }) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    const entry = `export default { async fetch() { await import(${JSON.stringify(`./${main}`)}); return new Response('ok'); } };`;
    const mf = new Miniflare({
      inspectorPort: 0,
      handleStructuredLogs: () => {},
      workers: [
        {
          config: {
            name: 'startup',
            compatibilityDate,
            compatibilityFlags: flags,
            manifest: { mainModule: '__startup-entry.js', modulesRoot: '/m', modules: { '__startup-entry.js': { type: 'esm', contents: entry }, ...modules } },
          },
        },
      ],
    });
    try {
      await mf.ready;
      const inspector = await mf.getInspectorURL();
      const ws = new WebSocket(new URL('/core:user:startup', inspector.href));
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      let id = 0;
      const pending = new Map();
      ws.onmessage = (m) => {
        const d = JSON.parse(String(m.data));
        if (d.id && pending.has(d.id)) {
          pending.get(d.id)(d.result);
          pending.delete(d.id);
        }
      };
      const send = (method, params) =>
        new Promise((resolve) => {
          id += 1;
          pending.set(id, resolve);
          ws.send(JSON.stringify({ id, method, params }));
        });
      await send('Profiler.enable');
      await send('Profiler.setSamplingInterval', { interval: 50 });
      await send('Profiler.start');
      const r = await mf.dispatchFetch('https://example.com/');
      await r.text();
      const { profile } = await send('Profiler.stop');
      ws.close();
      if (r.status !== 200) throw new Error(`start-up import failed: ${r.status}`);
      const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
      let active = 0;
      profile.timeDeltas.forEach((d, k) => {
        if (nodes.get(profile.samples[k])?.callFrame.functionName !== '(idle)') active += d;
      });
      results.push(active / 1000);
    } finally {
      await mf.dispose().catch(() => {});
    }
  }
  const sorted = [...results].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], runs: results };
}

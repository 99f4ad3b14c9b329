// Bench harness only (`npm run bench:scale`), never deployed: creates sessions in Gatehouse's
// per-user Durable Objects through the object's own RPC method `create`, the one the sign-in
// pipeline calls (src/storage/sessions.ts insertSession), so the scale bench need not run a
// scrypt sign-in per session. Bound to Gatehouse's `UserSessions` class as USER_SESSIONS.
// POST a JSON array of { userId, row } (row: the SessionRow the object stores); answers the
// number created.
export default {
  async fetch(request, env) {
    const items = await request.json();
    const byUser = new Map();
    for (const { userId, row } of items) byUser.set(userId, [...(byUser.get(userId) ?? []), row]);
    await Promise.all(
      [...byUser].map(async ([userId, rows]) => {
        const stub = env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(userId));
        for (const row of rows) await stub.create(userId, row);
      }),
    );
    return new Response(String(items.length));
  },
};

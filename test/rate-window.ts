/**
 * Rate-limit windows (the local `[[ratelimits]]` simulation) are aligned to the wall clock.
 * A test that counts requests up to the limit must not straddle a window boundary, or the
 * count resets half-way: wait, if needed, until at least `needSeconds` of a window remain.
 */
export async function freshRateLimitWindow(periodSeconds = 60, needSeconds = 40): Promise<void> {
  const periodMs = periodSeconds * 1000;
  const left = periodMs - (Date.now() % periodMs);
  if (left < needSeconds * 1000) await new Promise((r) => setTimeout(r, left + 50));
}

/**
 * Rate-limit windows (the local `[[ratelimits]]` simulation) are aligned to the wall clock, and
 * the simulation runs in a service of its own, whose clock a test cannot move. A test that
 * counts requests up to the limit must see them all in one window, or the count resets half-way.
 *
 * `inOneWindow` runs the count and checks that no window boundary passed while it ran (the
 * limiter reads the same clock, between our two readings); if one did, it runs the count again
 * with a fresh key (`attempt` tells the caller which: another client address), instead of
 * waiting for a window to start. A count of a hundred requests takes a second or two, so a
 * second attempt is rare and a third rarer still.
 */
export async function inOneWindow<T>(count: (attempt: number) => Promise<T>, periodSeconds = 60): Promise<T> {
  const windowOf = () => Math.floor(Date.now() / (periodSeconds * 1000));
  for (let attempt = 0; attempt < 3; attempt++) {
    const start = windowOf();
    const result = await count(attempt);
    if (windowOf() === start) return result;
  }
  throw new Error(`three counts in a row crossed a ${periodSeconds} s rate-limit window`);
}

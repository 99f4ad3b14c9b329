// The load generator, in its own process so that nothing else the runner does (reading
// workerd's output, timing other things) slows it. Reads one JSON job from argv[2]:
//   { url, headers, connections, warmup, duration, expectBody }
// runs a warm-up, then the measured run, and prints two JSON lines on stdout:
//   {"event":"start"}  just before the measured run (the runner samples workerd's CPU here)
//   {"event":"done", ...result}  after it (and samples again)
// Every response's body is compared with expectBody: autocannon counts the others as
// mismatches; non-2xx statuses, socket errors and timeouts are counted too, never fatal.
import autocannon from 'autocannon';

const job = JSON.parse(process.argv[2]);
const run = (duration) =>
  autocannon({ url: job.url, headers: job.headers, connections: job.connections, duration, expectBody: job.expectBody });

if (job.warmup > 0) await run(job.warmup);
process.stdout.write(`${JSON.stringify({ event: 'start' })}\n`);
const r = await run(job.duration);
const responses = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'];
process.stdout.write(
  `${JSON.stringify({
    event: 'done',
    rps: responses / (r.duration || job.duration),
    seconds: r.duration,
    responses,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    mismatches: r.mismatches,
    errors: r.errors,
    timeouts: r.timeouts,
  })}\n`,
);

// The load generator's process: `node bench/load.ts '<LoadOptions JSON>'` runs autocannon against
// one URL and prints one line of JSON (LoadResult). Run as a child of the benchmark (or the
// reliability test) so that the generator never shares an event loop with what it measures.
// Latencies are taken from autocannon's per-response timings (hrtime, sub-millisecond) rather
// than its integer-millisecond histogram.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { type LoadOptions, type LoadResult, summarise } from './load-generator.ts';

async function once(options: LoadOptions, durationSec: number, record: boolean) {
  const latencies: number[] = [];
  const ca = options.caFile ? readFileSync(options.caFile, 'utf8') : undefined;
  let finish!: (result: autocannon.Result) => void;
  let fail!: (error: Error) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const instance = autocannon(
    {
      url: options.url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: options.body,
      connections: options.connections,
      pipelining: 1,
      duration: durationSec,
      timeout: options.timeoutSec ?? 10,
      ...(options.rate ? { overallRate: options.rate } : {}),
      // autocannon's coordinated-omission correction assumes a 1 ms interval whatever the rate;
      // the latencies recorded here are the raw ones.
      ...(options.rate ? { ignoreCoordinatedOmission: true } : {}),
      ...(options.expectBody !== undefined ? { expectBody: options.expectBody } : {}),
      ...(ca ? { tlsOptions: { ca } } : {}),
    },
    (error, result) => (error ? fail(error) : finish(result)),
  );
  if (record) {
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
      latencies.push(responseTime);
    });
  }
  const result = await done;
  return { result, latencies };
}

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
if (options.warmupSec && options.warmupSec > 0) await once(options, options.warmupSec, false);
const { result, latencies } = await once(options, options.durationSec, true);
const out: LoadResult = summarise(options, result, latencies);
process.stdout.write(`${JSON.stringify(out)}\n`);

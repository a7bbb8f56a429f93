// graphile-worker, measured by jobdeck-bench beside Jobdeck on the same PostgreSQL.
//
//   node bench.mjs enqueue <jobs>                 adds that many no-op jobs in bulk
//   node bench.mjs drain <jobs> <concurrency>     {"seconds": ...} to run them all
//   node bench.mjs latency <samples>              {"latencies_ms": [...]} add-to-start
//
// DATABASE_URL names the database. The answer is the last line printed, as JSON.
import { EventEmitter } from "node:events";
import { Logger, makeWorkerUtils, run } from "graphile-worker";

const connectionString = process.env.DATABASE_URL;
const logger = new Logger(() => () => {});
const now = () => performance.timeOrigin + performance.now();

// The same pauses as Jobdeck's samples (bench/src/jobdeck.rs, `gap`).
const gap = (i) => new Promise((resolve) => setTimeout(resolve, (i * 7919) % 500));

async function enqueue(n) {
  const utils = await makeWorkerUtils({ connectionString, logger });
  await utils.migrate();
  for (let i = 0; i < n; i += 1000) {
    const specs = Array.from({ length: Math.min(1000, n - i) }, () => ({ identifier: "noop", payload: {} }));
    await utils.addJobs(specs);
  }
  await utils.release();
  console.log(JSON.stringify({ enqueued: n }));
}

async function drain(n, concurrency) {
  const utils = await makeWorkerUtils({ connectionString, logger });
  const events = new EventEmitter();
  let completed = 0;
  const allRan = new Promise((resolve) => {
    events.on("job:complete", () => {
      completed += 1;
      if (completed === n) resolve();
    });
  });
  const start = now();
  const runner = await run({
    connectionString,
    concurrency,
    noHandleSignals: true,
    logger,
    events,
    taskList: { noop: async () => {} },
  });
  await allRan;
  // graphile-worker emits job:complete before its completion reaches the database:
  // the jobs are done when their rows are gone.
  for (;;) {
    const { rows } = await utils.withPgClient((client) =>
      client.query("select count(*)::int as left from graphile_worker._private_jobs"),
    );
    if (rows[0].left === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const end = now();
  await runner.stop();
  await utils.release();
  console.log(JSON.stringify({ seconds: (end - start) / 1000 }));
}

async function latency(samples) {
  const utils = await makeWorkerUtils({ connectionString, logger });
  await utils.migrate();
  const waiting = new Map();
  const runner = await run({
    connectionString,
    concurrency: 4,
    noHandleSignals: true,
    logger,
    taskList: {
      sample: async (payload) => {
        waiting.get(payload.sample)?.(now());
      },
    },
  });
  const latencies = [];
  for (let i = 0; i < samples; i++) {
    await gap(i);
    const started = new Promise((resolve) => waiting.set(i, resolve));
    const enqueued = now();
    await utils.addJob("sample", { sample: i });
    latencies.push((await started) - enqueued);
    waiting.delete(i);
  }
  await runner.stop();
  await utils.release();
  console.log(JSON.stringify({ latencies_ms: latencies }));
}

const [command, ...args] = process.argv.slice(2);
if (command === "enqueue") await enqueue(Number(args[0]));
else if (command === "drain") await drain(Number(args[0]), Number(args[1]));
else if (command === "latency") await latency(Number(args[0]));
else {
  console.error("usage: node bench.mjs enqueue <jobs> | drain <jobs> <concurrency> | latency <samples>");
  process.exit(2);
}

//! `jobdeck-bench`: one run that measures Jobdeck beside the systems a user would pick
//! instead, on the same PostgreSQL, and prints one table (`./x bench` builds and runs
//! it; docs/benchmarks.md holds the figures and what they mean).
//!
//! # Layout
//! - [`stack`]: what the run stands on: a `jobdeck dev` sandbox with its own
//!   PostgreSQL, the seeded user, superuser connections for setup and checks.
//! - [`jobdeck`]: Jobdeck's throughput and enqueue-to-start latency through the REST
//!   API as the signed-in user, in this process and in a worker process of its own.
//! - [`kinds`]: the kinds file's executors (a program, a database function) beside
//!   a kind compiled in.
//! - [`live`]: Realtime's delivery of changes to one and to many subscribers.
//! - [`peers`]: graphile-worker (`bench/graphile`) and the pgbench ceiling.
//! - [`dashboard`]: the dashboard's queries among a million jobs.
//! - [`desktop`]: the app's start-up and idle memory beside an empty Tauri window.
//! - [`cpu`]: where the CPU time of a throughput run went, by process ([`procs`]:
//!   the process table it and [`desktop`] read).
//! - [`report`]: the table.
//!
//! Nothing here asserts a speed: the figures are printed, not judged.

mod cpu;
mod dashboard;
mod desktop;
mod jobdeck;
mod kinds;
mod live;
mod peers;
mod procs;
mod report;
mod stack;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use report::{Report, Row, percentile, rate, ratio, spread};
use stack::Stack;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Measures Jobdeck beside graphile-worker and pgbench on one PostgreSQL"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Internal>,
    /// No-op jobs per throughput run.
    #[arg(long, default_value_t = 20_000)]
    jobs: usize,
    /// The concurrency levels of the throughput runs.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 64])]
    concurrency: Vec<usize>,
    /// Enqueue-to-start samples per latency figure.
    #[arg(long, default_value_t = 100)]
    samples: u64,
    /// Jobs in the table for the dashboard's queries, and how many are the user's.
    #[arg(long, default_value_t = 1_000_000)]
    dashboard_jobs: i64,
    #[arg(long, default_value_t = 100_000)]
    user_jobs: i64,
    /// Rounds of the dashboard's queries.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// The numbers of worker processes of the scale-out runs, each with its own
    /// session and `--process-concurrency` slots.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    processes: Vec<usize>,
    #[arg(long, default_value_t = 16)]
    process_concurrency: usize,
    /// Jobs per run of the kinds' overhead (a no-op built in, as a program, as a
    /// database function), and the concurrency of those runs.
    #[arg(long, default_value_t = 5_000)]
    kinds_jobs: usize,
    #[arg(long, default_value_t = 4)]
    kinds_concurrency: usize,
    /// The numbers of Realtime subscribers the changes are delivered to, the changes
    /// per second, and for how many seconds.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100])]
    subscribers: Vec<usize>,
    #[arg(long, default_value_t = 500)]
    change_rate: u32,
    #[arg(long, default_value_t = 10)]
    change_seconds: u64,
    /// Seconds pgbench runs at each concurrency.
    #[arg(long, default_value_t = 10)]
    pgbench_seconds: u64,
    /// Launches of each window (the app, the empty one), taken in turns.
    #[arg(long, default_value_t = 7)]
    launches: usize,
    /// Leave out the desktop app (it needs Xvfb and the release app binaries).
    #[arg(long)]
    skip_desktop: bool,
    /// Where `jobdeck`, `jobdeck-app` and `jobdeck-empty-window` are; default: beside
    /// this program.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The graphile-worker script's directory, its npm packages installed.
    #[arg(long, default_value = "bench/graphile")]
    graphile_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// The worker in a process of its own, for the cross-process latency.
    #[command(hide = true)]
    WorkerProcess {
        #[arg(long)]
        api_url: String,
        #[arg(long)]
        anon_key: String,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Internal::WorkerProcess {
        api_url,
        anon_key,
        concurrency,
    }) = &args.command
    {
        return jobdeck::worker_process(api_url, anon_key, *concurrency).await;
    }
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("where this program is")?
            .to_path_buf(),
    };
    let stack = Stack::start(&bin_dir).await?;
    let outcome = run(&args, &stack, &bin_dir).await;
    stack.stop().await?;
    print!("{}", outcome?.render());
    Ok(())
}

fn step(what: &str) {
    eprintln!("==> {what}");
}

async fn run(args: &Args, stack: &Stack, bin_dir: &std::path::Path) -> anyhow::Result<Report> {
    let mut report = Report {
        heading: heading(args, stack).await?,
        rows: Vec::new(),
    };
    let jobs = stack.jobs().await?;
    peers::prepare(stack).await?;

    for &concurrency in &args.concurrency {
        step(&format!("throughput, concurrency {concurrency}"));
        let (ours, ours_cpu) = jobdeck::throughput(stack, &jobs, args.jobs, concurrency).await?;
        // Next to it, before the peers: pgbench leaves autovacuum busy for a while.
        let untallied = jobdeck::throughput_untallied(stack, &jobs, args.jobs, concurrency).await?;
        let (graphile, graphile_cpu) =
            peers::graphile_throughput(stack, &args.graphile_dir, args.jobs, concurrency).await?;
        let (ceiling, ceiling_cpu) =
            peers::pgbench(stack, concurrency, args.pgbench_seconds).await?;
        eprintln!(
            "    Jobdeck {} jobs/s ({} without the counts' triggers), graphile-worker {} jobs/s, pgbench {} tx/s",
            rate(ours),
            rate(untallied),
            rate(graphile),
            rate(ceiling)
        );
        report.rows.push(Row {
            what: "Throughput, jobs/s".into(),
            setting: format!(
                "{} no-op jobs, concurrency {concurrency}",
                rate(args.jobs as f64)
            ),
            jobdeck: rate(ours),
            peer: format!("graphile-worker {}", rate(graphile)),
            vs_peer: ratio(ours, graphile),
            ceiling: rate(ceiling),
            vs_ceiling: ratio(ours, ceiling),
        });
        report.rows.push(Row {
            what: "Throughput without the counts kept, jobs/s".into(),
            setting: format!(
                "{} no-op jobs, concurrency {concurrency}, the job tallies' triggers off",
                rate(args.jobs as f64)
            ),
            jobdeck: rate(untallied),
            peer: format!("Jobdeck {}", rate(ours)),
            vs_peer: ratio(untallied, ours),
            ceiling: "–".into(),
            vs_ceiling: "–".into(),
        });
        report.rows.push(Row {
            what: "CPU ms per 1000 jobs: worker / REST API / PostgreSQL".into(),
            setting: format!("the same runs, concurrency {concurrency}"),
            jobdeck: split(&ours_cpu),
            peer: format!("graphile-worker {}", split(&graphile_cpu)),
            vs_peer: ratio(ours_cpu.total(), graphile_cpu.total()),
            ceiling: split(&ceiling_cpu),
            vs_ceiling: ratio(ours_cpu.total(), ceiling_cpu.total()),
        });
    }

    for &processes in &args.processes {
        let slots = processes * args.process_concurrency;
        step(&format!(
            "scale-out, {processes} worker processes × {} slots",
            args.process_concurrency
        ));
        let (ours, ours_cpu) =
            jobdeck::scale_out(stack, &jobs, args.jobs, processes, args.process_concurrency)
                .await?;
        let (ceiling, ceiling_cpu) = peers::pgbench(stack, slots, args.pgbench_seconds).await?;
        eprintln!(
            "    Jobdeck {} jobs/s, pgbench {} tx/s",
            rate(ours),
            rate(ceiling)
        );
        report.rows.push(Row {
            what: "Scale-out, jobs/s".into(),
            setting: format!(
                "{} no-op jobs, {processes} worker process(es) × {} slots, a session each",
                rate(args.jobs as f64),
                args.process_concurrency
            ),
            jobdeck: rate(ours),
            peer: "–".into(),
            vs_peer: "–".into(),
            ceiling: rate(ceiling),
            vs_ceiling: ratio(ours, ceiling),
        });
        report.rows.push(Row {
            what: "CPU ms per 1000 jobs: workers / REST API / PostgreSQL".into(),
            setting: format!("the same run, {processes} worker process(es)"),
            jobdeck: split(&ours_cpu),
            peer: "–".into(),
            vs_peer: "–".into(),
            ceiling: split(&ceiling_cpu),
            vs_ceiling: ratio(ours_cpu.total(), ceiling_cpu.total()),
        });
    }

    step(&format!(
        "kinds: a no-op built in, as a program, as a database function, concurrency {}",
        args.kinds_concurrency
    ));
    let overhead = kinds::overhead(stack, &jobs, args.kinds_jobs, args.kinds_concurrency).await?;
    let (builtin, builtin_cpu) = overhead.builtin;
    eprintln!(
        "    built in {} jobs/s, program {} jobs/s, function {} jobs/s",
        rate(builtin),
        rate(overhead.command.0),
        rate(overhead.rpc.0)
    );
    let setting = format!(
        "{} jobs, concurrency {}",
        rate(args.kinds_jobs as f64),
        args.kinds_concurrency
    );
    for (what, how, (ours, ours_cpu)) in [
        (
            "a program (command)",
            "`true` spawned per job",
            overhead.command,
        ),
        (
            "a database function (rpc)",
            "one REST call per job",
            overhead.rpc,
        ),
    ] {
        report.rows.push(Row {
            what: format!("Kinds: a no-op {what}, jobs/s"),
            setting: format!("{setting}, {how}"),
            jobdeck: rate(ours),
            peer: format!("no-op built in {}", rate(builtin)),
            vs_peer: ratio(ours, builtin),
            ceiling: "–".into(),
            vs_ceiling: "–".into(),
        });
        report.rows.push(Row {
            what: "CPU ms per 1000 jobs: worker / REST API / PostgreSQL".into(),
            setting: format!("the same run, {what}"),
            jobdeck: split(&ours_cpu),
            peer: format!("no-op built in {}", split(&builtin_cpu)),
            vs_peer: ratio(ours_cpu.total(), builtin_cpu.total()),
            ceiling: "–".into(),
            vs_ceiling: "–".into(),
        });
    }
    let spawn_ms = (overhead.command.1.worker - builtin_cpu.worker) / 1000.0;
    report.rows.push(Row::alone(
        "Kinds: a program's cost per job, ms of the worker's CPU",
        "the program's run less the built-in's",
        format!("{spawn_ms:.2}"),
    ));

    step("enqueue-to-start latency");
    let graphile = peers::graphile_latency(stack, &args.graphile_dir, args.samples).await?;
    let in_process = jobdeck::latency_in_process(&jobs, args.samples).await?;
    let cross_process = jobdeck::latency_cross_process(stack, &jobs, args.samples).await?;
    for (setting, ours) in [
        ("worker in the enqueuing process (woken)", &in_process),
        (
            "worker in another process (woken by Realtime)",
            &cross_process,
        ),
    ] {
        report.rows.push(Row {
            what: "Enqueue → start, ms p50 / p95 / p99".into(),
            setting: format!("{setting}, {} samples", args.samples),
            jobdeck: spread(ours),
            peer: format!("graphile-worker (LISTEN/NOTIFY) {}", spread(&graphile)),
            vs_peer: format!(
                "{} (p50)",
                ratio(percentile(ours, 50.0), percentile(&graphile, 50.0))
            ),
            ceiling: "–".into(),
            vs_ceiling: "–".into(),
        });
    }

    for &subscribers in &args.subscribers {
        step(&format!(
            "Realtime: {} changes/s for {} s to {subscribers} subscriber(s)",
            args.change_rate, args.change_seconds
        ));
        let delivered = live::delivery(
            stack,
            &jobs,
            subscribers,
            args.change_rate,
            args.change_seconds,
        )
        .await?;
        eprintln!(
            "    {} changes at {}/s, delivery {} ms",
            delivered.changes,
            rate(delivered.per_second),
            spread(&delivered.latencies)
        );
        let setting = format!(
            "{subscribers} subscriber(s) of the user, {} changes at {}/s",
            rate(delivered.changes as f64),
            rate(delivered.per_second)
        );
        report.rows.push(Row::alone(
            "Realtime: change delivery, ms p50 / p95 / p99",
            setting,
            spread(&delivered.latencies),
        ));
        report.rows.push(Row::alone(
            "Realtime: sandbox CPU ms per 1000 changes: Realtime server / PostgreSQL",
            format!("the same run, {subscribers} subscriber(s)"),
            format!("{:.0} / {:.0}", delivered.cpu.api, delivered.cpu.postgres),
        ));
    }

    step(&format!(
        "dashboard: seeding {} jobs, {} of them the user's",
        rate(args.dashboard_jobs as f64),
        rate(args.user_jobs as f64)
    ));
    let user = jobs.session().user().context("signed out")?;
    dashboard::seed(stack, &user.id, args.dashboard_jobs, args.user_jobs).await?;
    step("dashboard: queries");
    let timings = dashboard::measure(&jobs, args.rounds).await?;
    let setting = format!(
        "{} of {} jobs, {} rounds",
        rate(args.user_jobs as f64),
        rate(args.dashboard_jobs as f64),
        args.rounds
    );
    for (what, values) in [
        (
            "Dashboard: first page (50), ms p50 / p95 / p99",
            &timings.first_page,
        ),
        (
            "Dashboard: counts per status, ms p50 / p95 / p99",
            &timings.counts,
        ),
        (
            "Dashboard: first page + counts together (as the UI opens), ms p50 / p95 / p99",
            &timings.opening,
        ),
        (
            "Dashboard: changes since a cursor, ms p50 / p95 / p99",
            &timings.changes,
        ),
        (
            "Dashboard: first page of the failed ones, with their total, ms p50 / p95 / p99",
            &timings.by_status,
        ),
        (
            "Dashboard: first page of one kind (a fifth), with its total, ms p50 / p95 / p99",
            &timings.by_kind,
        ),
        (
            "Dashboard: first page of a search matching all (kind or id), with its total, ms p50 / p95 / p99",
            &timings.search,
        ),
        (
            "Dashboard: first page of an input containment ({\"customer\": 42}, a thousandth), with its total, ms p50 / p95 / p99",
            &timings.by_input,
        ),
        (
            "Dashboard: first page of an input word search (\"42\", a thousandth), with its total, ms p50 / p95 / p99",
            &timings.by_words,
        ),
        (
            "Dashboard: first page of a result containment ({\"rows\": 42}, a thousandth of the finished), with its total, ms p50 / p95 / p99",
            &timings.by_result,
        ),
        (
            "Dashboard: activity over the last hour (3,600 of the user's jobs ended), ms p50 / p95 / p99",
            &timings.activity_hour,
        ),
        (
            "Dashboard: activity over the last day (per hour), ms p50 / p95 / p99",
            &timings.activity_day,
        ),
    ] {
        report
            .rows
            .push(Row::alone(what, setting.clone(), spread(values)));
    }

    if !args.skip_desktop {
        step("desktop app and an empty Tauri window");
        let display = desktop::Display::start().await?;
        let session = stack.session().await?;
        let app = desktop::app_launch(stack, bin_dir, &session)?;
        let empty = desktop::empty_launch(stack, bin_dir);
        let launches = args.launches.max(1);
        let measured = async {
            let (mut ours, mut yardstick) = (Vec::new(), Vec::new());
            for _ in 0..launches {
                ours.push(desktop::measure(&display, &app).await?);
                yardstick.push(desktop::measure(&display, &empty).await?);
            }
            anyhow::Ok((ours, yardstick))
        }
        .await;
        display.stop().await;
        let (ours, yardstick) = measured?;
        let median = |figures: &[desktop::Figures], of: fn(&desktop::Figures) -> f64| {
            percentile(&figures.iter().map(of).collect::<Vec<_>>(), 50.0)
        };
        let (ours_start, empty_start) = (
            median(&ours, |f| f.start_ms),
            median(&yardstick, |f| f.start_ms),
        );
        report.rows.push(Row {
            what: format!("Desktop: launch → first paint, ms (median of {launches}, in turns)"),
            setting: "job list of the signed-in user; empty window: its page painted".into(),
            jobdeck: report::ms(ours_start),
            peer: format!("empty Tauri window {}", report::ms(empty_start)),
            vs_peer: ratio(ours_start, empty_start),
            ceiling: "–".into(),
            vs_ceiling: "–".into(),
        });
        // Where the app's launch went, by the steps its marker line times.
        if let Some(steps) = desktop::steps_summary(&ours) {
            report.rows.push(Row::alone(
                format!("Desktop: the app's launch by step, ms since its start (median of {launches})"),
                "on the app's clock: its page started, loaded, its script ran, the connection and the first list answered, painted (since_launch)",
                steps,
            ));
        }
        let (ours_idle, empty_idle) = (
            median(&ours, |f| f.idle_mib),
            median(&yardstick, |f| f.idle_mib),
        );
        report.rows.push(Row {
            what: format!("Desktop: idle memory, PSS MiB (median of {launches})"),
            setting: "whole process tree, WebKit processes included".into(),
            jobdeck: format!("{ours_idle:.1}"),
            peer: format!("empty Tauri window {empty_idle:.1}"),
            vs_peer: ratio(ours_idle, empty_idle),
            ceiling: "–".into(),
            vs_ceiling: "–".into(),
        });
    }
    Ok(report)
}

/// A CPU split as the table shows it.
fn split(cpu: &cpu::PerThousand) -> String {
    format!("{:.0} / {:.0} / {:.0}", cpu.worker, cpu.api, cpu.postgres)
}

/// The date, the machine and the settings the figures were taken on.
async fn heading(args: &Args, stack: &Stack) -> anyhow::Result<Vec<String>> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = read("/proc/sys/kernel/osrelease");
    let postgres: String = stack
        .admin("postgres")
        .await?
        .query_one("show server_version", &[])
        .await?
        .get(0);
    let graphile: serde_json::Value = serde_json::from_str(&read(
        &args
            .graphile_dir
            .join("node_modules/graphile-worker/package.json")
            .display()
            .to_string(),
    ))
    .unwrap_or_default();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
        commit.push_str(" with uncommitted changes");
    }
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Ok(vec![
        format!("Jobdeck benchmark, {date}, commit {commit}"),
        String::new(),
        format!(
            "- Machine: {cpu}, {cores} cores, {memory_gib:.0} GiB, Linux {}",
            kernel.trim()
        ),
        format!(
            "- One PostgreSQL {postgres} (the sandbox's) under every system; graphile-worker {} on Node.js {}",
            graphile["version"].as_str().unwrap_or("?"),
            node_version()
        ),
        format!(
            "- Jobdeck: release build, REST API of `jobdeck dev` over loopback, as the signed-in user under row-level security; settings: --jobs {} --concurrency {} --processes {} --process-concurrency {} --kinds-jobs {} --kinds-concurrency {} --subscribers {} --change-rate {} --change-seconds {} --samples {} --dashboard-jobs {} --user-jobs {} --rounds {} --pgbench-seconds {}",
            args.jobs,
            list(&args.concurrency),
            list(&args.processes),
            args.process_concurrency,
            args.kinds_jobs,
            args.kinds_concurrency,
            list(&args.subscribers),
            args.change_rate,
            args.change_seconds,
            args.samples,
            args.dashboard_jobs,
            args.user_jobs,
            args.rounds,
            args.pgbench_seconds
        ),
    ])
}

fn list(values: &[usize]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

//! The desktop app beside an empty Tauri window built the same way: time from launch
//! to the first painted job list (the app's own log line, written when the UI says it
//! painted; for the empty window, the line it prints once its page is painted, timed
//! the same way: a task queued from the next frame's callbacks), and the memory both
//! use when idle:
//! PSS summed over the whole process tree, WebKit's web and network processes included.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

use crate::{
    procs,
    report::{self, percentile},
    stack::Stack,
};

/// How long a window sits before its memory is read: the app's first claims, polls
/// and WebKit's start-up work are over by then.
const SETTLE: Duration = Duration::from_secs(5);

/// What one launch measured.
#[derive(Debug)]
pub struct Figures {
    /// Launch to first paint (ms).
    pub start_ms: f64,
    /// Idle PSS of the process tree (MiB).
    pub idle_mib: f64,
    /// The marker line, which may time the launch's steps (see [`steps`]).
    pub marker: String,
}

/// The app's launch steps its marker line times (the `…_ms=` fields the app logs
/// beside the time since launch, on its own clock), in the order they happen.
pub const STEPS: [&str; 7] = [
    "page_started_ms",
    "page_loaded_ms",
    "script_ms",
    "connection_ms",
    "list_ms",
    "painted_ms",
    "since_launch_ms",
];

/// Each of [`STEPS`] as its median over `launches` ("page_started 245, ..."), from
/// the launches whose marker line times them (a warning for each that does not).
pub fn steps_summary(launches: &[Figures]) -> Option<String> {
    let timed: Vec<Vec<f64>> = launches
        .iter()
        .filter_map(|figures| {
            let steps = steps(&figures.marker);
            if steps.is_none() {
                eprintln!(
                    "warning: the app's marker line times no steps: {}",
                    figures.marker
                );
            }
            steps
        })
        .collect();
    if timed.is_empty() {
        return None;
    }
    let medians = STEPS.iter().enumerate().map(|(i, step)| {
        let at: Vec<f64> = timed.iter().map(|t| t[i]).collect();
        format!(
            "{} {}",
            step.trim_end_matches("_ms"),
            report::ms(percentile(&at, 50.0))
        )
    });
    Some(medians.collect::<Vec<_>>().join(", "))
}

/// The value of each of [`STEPS`] in `marker`, if it has them all.
pub fn steps(marker: &str) -> Option<Vec<f64>> {
    STEPS
        .iter()
        .map(|step| {
            let (_, rest) = marker.split_once(&format!("{step}="))?;
            let value = rest.trim_start_matches('"');
            let end = value
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                .unwrap_or(value.len());
            value[..end].parse().ok()
        })
        .collect()
}

/// A private X server for the windows.
#[derive(Debug)]
pub struct Display {
    name: String,
    server: Child,
}

impl Display {
    pub async fn start() -> anyhow::Result<Self> {
        for number in 140..200 {
            if Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
                continue;
            }
            let name = format!(":{number}");
            let mut server = Command::new("Xvfb")
                .args([&name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting Xvfb")?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
                    return Ok(Display { name, server });
                }
                if server.try_wait()?.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        bail!("could not start Xvfb")
    }

    pub async fn stop(mut self) {
        let _ = self.server.start_kill();
        let _ = self.server.wait().await;
    }
}

/// What one launch runs.
pub struct Launch<'a> {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The line on stderr that says the first paint happened.
    pub marker: &'a str,
}

/// Launches `launch` once, reads its memory once it has settled, and ends it. The
/// caller takes turns between the two windows, so a machine busier at one moment
/// than another weighs on both.
pub async fn measure(display: &Display, launch: &Launch<'_>) -> anyhow::Result<Figures> {
    let started = Instant::now();
    let mut child = Command::new(&launch.program)
        .args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env("DISPLAY", &display.name)
        // Xvfb has no GPU; WebKit's compositor on a software rasterizer is fragile.
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", launch.program.display()))?;
    let mut lines = BufReader::new(child.stderr.take().context("no stderr")?).lines();
    let mut log = Vec::new();
    let marker = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("no first paint within 60 s")??;
        let Some(line) = line else {
            bail!(
                "{} ended before painting:\n{}",
                launch.program.display(),
                log.join("\n")
            );
        };
        if line.contains(launch.marker) {
            break line;
        }
        log.push(line);
    };
    let start_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Keep reading its log so it never blocks on a full pipe.
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    tokio::time::sleep(SETTLE).await;
    let pid = child.id().context("the window ended")?;
    let idle_mib = tree_pss_kib(pid)? as f64 / 1024.0;
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    if tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .is_err()
    {
        child.start_kill()?;
        child.wait().await?;
    }
    drain.abort();
    Ok(Figures {
        start_ms,
        idle_mib,
        marker,
    })
}

/// PSS (KiB) of `root` and every process descended from it.
fn tree_pss_kib(root: u32) -> anyhow::Result<u64> {
    let table = procs::table();
    let mut total = 0;
    for pid in std::iter::once(root).chain(procs::descendants(&table, root)) {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .with_context(|| format!("reading the memory of process {pid}"))?;
        total += rollup
            .lines()
            .find_map(|line| {
                line.strip_prefix("Pss:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
    }
    Ok(total)
}

/// The app's launch: signed in already (the seeded user's session written where the
/// app keeps it), on the running sandbox, in a throwaway home.
pub fn app_launch<'a>(
    stack: &Stack,
    bin_dir: &Path,
    session: &jobdeck_core::Session,
) -> anyhow::Result<Launch<'a>> {
    let home = stack.dir.join("app-home");
    let data = home.join(".local/share");
    let app_data = data.join("dev.jobdeck.desktop");
    std::fs::create_dir_all(&app_data)?;
    let sessions = serde_json::json!({ stack.status.api_url.clone(): session });
    std::fs::write(
        app_data.join("session.json"),
        serde_json::to_vec(&sessions)?,
    )?;
    Ok(Launch {
        program: bin_dir.join("jobdeck-app"),
        args: vec!["--sandbox".into()],
        env: vec![
            ("HOME".into(), home.display().to_string()),
            ("XDG_DATA_HOME".into(), data.display().to_string()),
            (
                "XDG_CONFIG_HOME".into(),
                home.join(".config").display().to_string(),
            ),
            (
                "JOBDECK_SANDBOX_DIR".into(),
                stack.dir.join("sandbox").display().to_string(),
            ),
            ("JOBDECK_LOG".into(), "info,tao=warn,wry=warn".into()),
        ],
        marker: "job list shown",
    })
}

pub fn empty_launch<'a>(stack: &Stack, bin_dir: &Path) -> Launch<'a> {
    let home = stack.dir.join("empty-home");
    Launch {
        program: bin_dir.join("jobdeck-empty-window"),
        args: Vec::new(),
        env: vec![
            ("HOME".into(), home.display().to_string()),
            (
                "XDG_DATA_HOME".into(),
                home.join(".local/share").display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                home.join(".config").display().to_string(),
            ),
        ],
        marker: "page painted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_line_gives_its_steps_in_order() {
        let line = "2026-12-07T23:00:00Z  INFO jobdeck_app::shell: job list shown \
                    since_launch_ms=\"570\" painted_ms=\"551\" page_started_ms=\"301\" \
                    page_loaded_ms=\"330\" script_ms=\"402\" connection_ms=\"431\" \
                    list_ms=\"512\"";
        assert_eq!(
            steps(line),
            Some(vec![301.0, 330.0, 402.0, 431.0, 512.0, 551.0, 570.0])
        );
        assert_eq!(steps("job list shown since_launch_ms=570"), None);
    }
}

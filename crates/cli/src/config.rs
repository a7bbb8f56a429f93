//! Which Supabase project the CLI talks to, and where its own session lives.
//!
//! The project comes from flags, then the environment (`SUPABASE_URL` with
//! `SUPABASE_ANON_KEY` or `SUPABASE_PUBLISHABLE_KEY`), then the config file
//! (`$XDG_CONFIG_HOME/jobdeck/config.json`: `{"url": ..., "key": ...}`), and when
//! nothing is configured, the local sandbox that `jobdeck dev` is running.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use jobdeck_core::Project;
use serde::Deserialize;

use crate::commands::dev::default_data_dir;

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    url: Option<String>,
    key: Option<String>,
}

fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir).join("jobdeck"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".config/jobdeck"))
}

/// The project from `url`/`key` flags, the environment, the config file or the sandbox.
pub fn project(url: Option<&str>, key: Option<&str>) -> anyhow::Result<Project> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let url = url.map(str::to_string).or_else(|| env("SUPABASE_URL"));
    let key = key
        .map(str::to_string)
        .or_else(|| env("SUPABASE_ANON_KEY"))
        .or_else(|| env("SUPABASE_PUBLISHABLE_KEY"));
    if let (Some(url), Some(key)) = (&url, &key) {
        return Ok(Project::new(url, key)?);
    }
    let path = config_dir()?.join("config.json");
    let file: ConfigFile = match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?
        }
        Err(_) => ConfigFile::default(),
    };
    if let (Some(url), Some(key)) = (url.or(file.url), key.or(file.key)) {
        return Ok(Project::new(&url, &key)?);
    }
    let data_dir = default_data_dir()?;
    match jobdeck_sandbox::read_status(&data_dir) {
        Some(status) => Ok(Project::new(&status.api_url, &status.anon_key)?),
        None => bail!(
            "no Supabase project configured: pass --url and --key, set SUPABASE_URL and \
             SUPABASE_ANON_KEY, write {}, or start the local sandbox with `jobdeck dev`",
            path.display()
        ),
    }
}

/// The CLI's own session file for `project` (never the desktop app's: two processes
/// sharing one session would revoke it by rotating its refresh token), and whether it
/// was chosen with `JOBDECK_SESSION_FILE` (then it alone holds the session).
pub fn session_file(project: &Project) -> anyhow::Result<(PathBuf, bool)> {
    if let Some(path) = std::env::var_os("JOBDECK_SESSION_FILE").filter(|v| !v.is_empty()) {
        return Ok((PathBuf::from(path), true));
    }
    // One session per project, named after its host.
    let host: String = project
        .url()
        .split("://")
        .nth(1)
        .unwrap_or(project.url())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((config_dir()?.join(format!("session-{host}.json")), false))
}

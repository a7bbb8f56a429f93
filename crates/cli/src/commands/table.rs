//! Tables as the CLI prints them (comfy-table: columns fit the terminal's width, and
//! nothing is cut or coloured when the output is not a terminal), and the cells they
//! share.

use chrono::{DateTime, Utc};
use comfy_table::{ContentArrangement, Table, presets};
use jobdeck_core::Job;

/// A table with `header`, laid out for the terminal it is printed to.
pub fn new<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// A time in the local zone, short; `-` for none.
pub fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or("-".into(), |t| {
        t.with_timezone(&chrono::Local)
            .format("%m-%d %H:%M:%S")
            .to_string()
    })
}

fn duration(job: &Job) -> String {
    match (job.started_at, job.ended_at) {
        (Some(start), end) => {
            let ms = (end.unwrap_or_else(Utc::now) - start)
                .num_milliseconds()
                .max(0);
            if ms < 10_000 {
                format!("{:.1}s", ms as f64 / 1000.0)
            } else {
                format!("{}s", ms / 1000)
            }
        }
        _ => "-".into(),
    }
}

/// Jobs, one per row.
pub fn jobs(jobs: &[Job]) -> String {
    let mut table = new([
        "ID", "KIND", "STATUS", "CREATED", "STARTED", "ENDED", "TOOK", "PROG", "ATTEMPT",
    ]);
    for job in jobs {
        table.add_row(vec![
            job.id.to_string(),
            job.kind.clone(),
            job.status.as_str().to_string(),
            time(Some(job.created_at)),
            time(job.started_at),
            time(job.ended_at),
            duration(job),
            job.progress
                .map_or("-".into(), |p| format!("{:.0}%", p * 100.0)),
            format!("{}/{}", job.attempt, job.max_attempts),
        ]);
    }
    format!("{table}\n")
}

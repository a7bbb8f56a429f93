//! The run's one table, in Markdown so it goes into docs/benchmarks.md as printed.

use std::fmt::Write as _;

/// p-th percentile (0-100) of `values`, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// "p50 / p95 / p99" of a latency sample.
pub fn spread(values: &[f64]) -> String {
    format!(
        "{} / {} / {}",
        ms(percentile(values, 50.0)),
        ms(percentile(values, 95.0)),
        ms(percentile(values, 99.0))
    )
}

pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

pub fn rate(value: f64) -> String {
    let whole = value.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 && ours.is_finite() {
        format!("{:.2}", ours / theirs)
    } else {
        "–".into()
    }
}

/// One row: what, under which setting, Jobdeck's figure, the peer's (named), their
/// ratio, and the ceiling with Jobdeck's ratio to it where there is one.
#[derive(Debug, Default)]
pub struct Row {
    pub what: String,
    pub setting: String,
    pub jobdeck: String,
    pub peer: String,
    pub vs_peer: String,
    pub ceiling: String,
    pub vs_ceiling: String,
}

impl Row {
    /// A row with Jobdeck's figure alone: no peer, no ceiling.
    pub fn alone(what: impl Into<String>, setting: impl Into<String>, jobdeck: String) -> Row {
        let none = || "–".to_string();
        Row {
            what: what.into(),
            setting: setting.into(),
            jobdeck,
            peer: none(),
            vs_peer: none(),
            ceiling: none(),
            vs_ceiling: none(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub heading: Vec<String>,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.heading {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| Measure | Setting | Jobdeck | Peer | Jobdeck ÷ peer | Ceiling (pgbench) | Jobdeck ÷ ceiling |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.what,
                row.setting,
                row.jobdeck,
                row.peer,
                row.vs_peer,
                row.ceiling,
                row.vs_ceiling
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn rates_group_thousands() {
        assert_eq!(rate(5234.4), "5,234");
        assert_eq!(rate(123.0), "123");
        assert_eq!(rate(1_000_000.0), "1,000,000");
    }
}

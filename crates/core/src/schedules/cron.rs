//! Cron expressions in a time zone, read by `croner` (five fields, `@hourly`-style
//! aliases; day of month and day of week either matching, as in Vixie cron) with zones
//! from `chrono-tz`. Daylight saving time as cron handles it: a fixed time that a
//! change skips runs right after the change, one that happens twice runs once; an
//! interval (`*/15 * * * *`) runs by the clock on both sides.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

use super::{OnMissed, Schedule};
use crate::Error;

/// A tick later than this after its time counts as missed: a schedule set to
/// [`OnMissed::Skip`] makes no job for it. Workers wake at a tick, so an on-time tick is
/// run within a second or two; a minute leaves room for a slow network.
pub const MISSED_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A parsed expression and its zone.
#[derive(Debug, Clone)]
pub struct Cron {
    pattern: croner::Cron,
    zone: Tz,
}

impl Cron {
    /// Reads `expression` in the IANA zone `timezone`; a clear error for either.
    pub fn parse(expression: &str, timezone: &str) -> Result<Cron, Error> {
        let zone: Tz = timezone.trim().parse().map_err(|_| {
            Error::Invalid(format!(
                "unknown time zone {timezone:?}: use an IANA name such as Europe/Paris or UTC"
            ))
        })?;
        let pattern = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expression.trim())
            .map_err(|error| {
                Error::Invalid(format!(
                    "the cron expression {expression:?} is not valid ({error}): use five fields \
                     (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, \
                     @monthly, @yearly"
                ))
            })?;
        // An expression that parses but never matches (`0 0 30 2 *`) is refused too.
        let cron = Cron { pattern, zone };
        if cron.next_after(Utc::now()).is_none() {
            return Err(Error::Invalid(format!(
                "the cron expression {expression:?} never matches a date"
            )));
        }
        Ok(cron)
    }

    /// A schedule's own expression and zone.
    pub fn of(schedule: &Schedule) -> Result<Cron, Error> {
        Cron::parse(&schedule.cron, &schedule.timezone)
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.pattern
            .find_next_occurrence(&after.with_timezone(&self.zone), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest tick at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.pattern
            .find_previous_occurrence(&at.with_timezone(&self.zone), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The next `n` ticks after `after`, for showing what a schedule will do.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::with_capacity(n);
        let mut at = after;
        while ticks.len() < n {
            let Some(next) = self.next_after(at) else {
                break;
            };
            ticks.push(next);
            at = next;
        }
        ticks
    }
}

/// What a worker asks the database to do for a due schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    /// The tick the schedule waits for (its `next_run_at` as read): the database acts
    /// only if it still does.
    pub due: DateTime<Utc>,
    /// The tick to make a job for: `due` when on time, the latest missed tick after
    /// downtime (one catch-up), none when missed ticks are skipped.
    pub tick: Option<DateTime<Utc>>,
    /// The schedule's next tick after now.
    pub next: DateTime<Utc>,
}

impl Firing {
    /// What to do for a schedule waiting for `due`, at `now`; `None` before `due` or
    /// for an expression that matches no later date.
    pub fn at(
        cron: &Cron,
        on_missed: OnMissed,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<Firing> {
        if due > now {
            return None;
        }
        let next = cron.next_after(now)?;
        // The latest tick that has come; `due` itself if the expression no longer puts
        // one there (a next_run_at written by hand).
        let latest = cron
            .latest_at_or_before(now)
            .filter(|t| *t >= due)
            .unwrap_or(due);
        let missed = now - latest > MISSED_AFTER;
        let tick = match on_missed {
            OnMissed::Skip if missed => None,
            _ => Some(latest),
        };
        Some(Firing { due, tick, next })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::{Cron, Firing, OnMissed};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("a valid UTC time")
    }

    #[test]
    fn expressions_and_zones_are_refused_with_a_reason() {
        for (expr, zone, says) in [
            ("* * *", "UTC", "not valid"),
            ("61 * * * *", "UTC", "not valid"),
            ("0 0 * * * *", "UTC", "not valid"),
            ("0 0 30 2 *", "UTC", "never matches"),
            ("@hourly", "Mars/Olympus", "unknown time zone"),
        ] {
            let error = Cron::parse(expr, zone).expect_err(expr).to_string();
            assert!(error.contains(says), "{expr} in {zone}: {error}");
        }
        for expr in [
            "*/5 * * * *",
            "@daily",
            "@hourly",
            "0 9 * * MON-FRI",
            "0 0 1 JAN *",
        ] {
            Cron::parse(expr, "Europe/Paris").expect(expr);
        }
    }

    #[test]
    fn ticks_follow_the_zone_across_daylight_saving_changes() {
        // New York springs forward on 2026-03-08 (02:00 EST becomes 03:00 EDT) and falls
        // back on 2026-11-01 (02:00 EDT becomes 01:00 EST).
        let daily = Cron::parse("30 2 * * *", "America/New_York").expect("parses");
        let ticks = daily.upcoming(utc(2026, 3, 7, 0, 0), 3);
        assert_eq!(
            ticks,
            vec![
                // 02:30 EST on the 7th.
                utc(2026, 3, 7, 7, 30),
                // 02:30 does not exist on the 8th: right after the change, 03:00 EDT.
                utc(2026, 3, 8, 7, 0),
                // 02:30 EDT on the 9th.
                utc(2026, 3, 9, 6, 30),
            ]
        );
        // 01:30 happens twice on 2026-11-01: a fixed time runs once.
        let at_one_thirty = Cron::parse("30 1 * * *", "America/New_York").expect("parses");
        let ticks = at_one_thirty.upcoming(utc(2026, 10, 31, 12, 0), 2);
        assert_eq!(
            ticks,
            vec![utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
        );
        // An interval runs by the clock: 01:00 and 01:30 EDT, then again in EST.
        let half_hourly = Cron::parse("*/30 1 * * *", "America/New_York").expect("parses");
        let ticks = half_hourly.upcoming(utc(2026, 11, 1, 4, 59), 4);
        assert_eq!(
            ticks,
            vec![
                utc(2026, 11, 1, 5, 0),
                utc(2026, 11, 1, 5, 30),
                utc(2026, 11, 1, 6, 0),
                utc(2026, 11, 1, 6, 30),
            ]
        );
    }

    #[test]
    fn after_downtime_one_catch_up_or_none() {
        let hourly = Cron::parse("@hourly", "UTC").expect("parses");
        let due = utc(2026, 12, 1, 9, 0);
        let now = utc(2026, 12, 1, 12, 20);
        let once = Firing::at(&hourly, OnMissed::RunOnce, due, now).expect("due");
        assert_eq!(
            once,
            Firing {
                due,
                tick: Some(utc(2026, 12, 1, 12, 0)),
                next: utc(2026, 12, 1, 13, 0)
            }
        );
        let skip = Firing::at(&hourly, OnMissed::Skip, due, now).expect("due");
        assert_eq!((skip.tick, skip.next), (None, utc(2026, 12, 1, 13, 0)));
        // On time (within a minute of the tick), both run it.
        let on_time = utc(2026, 12, 1, 9, 0) + chrono::TimeDelta::seconds(2);
        for on_missed in [OnMissed::RunOnce, OnMissed::Skip] {
            let firing = Firing::at(&hourly, on_missed, due, on_time).expect("due");
            assert_eq!(
                (firing.tick, firing.next),
                (Some(due), utc(2026, 12, 1, 10, 0))
            );
        }
        assert_eq!(
            Firing::at(
                &hourly,
                OnMissed::RunOnce,
                due,
                due - chrono::TimeDelta::seconds(1)
            ),
            None
        );
    }
}

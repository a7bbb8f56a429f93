//! The user's schedules and paused kinds over the REST API (tables `schedules` and
//! `paused_kinds`, functions `fire_schedule` and `run_schedule`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::JobsClient;
use crate::{
    Error, Job,
    schedules::{Cron, Firing, Schedule, ScheduleSpec},
};

/// A kind paused for all of the user's workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PausedKind {
    pub kind: String,
    pub paused_at: DateTime<Utc>,
}

/// A schedule with the last job it made (its outcome so far), as a list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ScheduleSummary {
    pub schedule: Schedule,
    pub last_job: Option<Job>,
}

/// The row the REST API writes for `spec`, with its first tick computed (none while
/// disabled: resuming computes it then).
fn schedule_row(spec: &ScheduleSpec) -> Result<Value, Error> {
    if spec.kind.trim().is_empty() {
        return Err(Error::Invalid("a schedule needs a kind".into()));
    }
    if !spec.context.is_object() {
        return Err(Error::Invalid(
            "a schedule's input must be a JSON object".into(),
        ));
    }
    let cron = Cron::parse(&spec.cron, &spec.timezone)?;
    let mut row = serde_json::to_value(spec).map_err(|e| Error::Invalid(e.to_string()))?;
    row["cron"] = json!(spec.cron.trim());
    row["timezone"] = json!(spec.timezone.trim());
    row["next_run_at"] = json!(spec.enabled.then(|| cron.next_after(Utc::now())).flatten());
    Ok(row)
}

/// A schedule id that matched no row the user may see.
fn schedule_not_found(id: i64) -> Error {
    Error::Api {
        status: 404,
        code: "JD001".into(),
        message: format!("schedule {id} not found"),
        details: None,
        hint: None,
    }
}

impl JobsClient {
    /// The user's schedules, oldest first.
    pub async fn schedules(&self) -> Result<Vec<Schedule>, Error> {
        let builder = self.rest.from("schedules").select("*").order("id.asc");
        Ok(self.send(builder).await?.0)
    }

    /// The user's schedules, each with its last job: two round trips however many.
    pub async fn schedule_summaries(&self) -> Result<Vec<ScheduleSummary>, Error> {
        let schedules = self.schedules().await?;
        let ids: Vec<String> = schedules
            .iter()
            .filter_map(|s| s.last_job_id)
            .map(|id| id.to_string())
            .collect();
        let last: Vec<Job> = if ids.is_empty() {
            Vec::new()
        } else {
            let builder = self.rest.from("jobs").select("*").in_("id", ids);
            self.send(builder).await?.0
        };
        Ok(schedules
            .into_iter()
            .map(|schedule| ScheduleSummary {
                last_job: last
                    .iter()
                    .find(|j| Some(j.id) == schedule.last_job_id)
                    .cloned(),
                schedule,
            })
            .collect())
    }

    pub async fn schedule(&self, id: i64) -> Result<Schedule, Error> {
        let builder = self
            .rest
            .from("schedules")
            .select("*")
            .eq("id", id.to_string());
        let (rows, _): (Vec<Schedule>, _) = self.send(builder).await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| schedule_not_found(id))
    }

    /// Saves a new schedule; its expression and zone are checked first and its first
    /// tick computed.
    pub async fn create_schedule(&self, spec: &ScheduleSpec) -> Result<Schedule, Error> {
        let body = schedule_row(spec)?.to_string();
        let builder = self.rest.from("schedules").select("*").insert(body);
        let (rows, _): (Vec<Schedule>, _) = self.send(builder).await?;
        rows.into_iter().next().ok_or_else(|| Error::Protocol {
            url: self.url.clone(),
            reason: "the new schedule was not returned".into(),
        })
    }

    /// Replaces schedule `id`'s settings with `spec`; its next tick is computed again
    /// from now.
    pub async fn update_schedule(&self, id: i64, spec: &ScheduleSpec) -> Result<Schedule, Error> {
        self.patch_schedule(id, schedule_row(spec)?).await
    }

    /// Pauses (no ticks run) or resumes (the next tick from now on) schedule `id`.
    pub async fn set_schedule_enabled(&self, id: i64, enabled: bool) -> Result<Schedule, Error> {
        let schedule = self.schedule(id).await?;
        self.update_schedule(
            id,
            &ScheduleSpec {
                enabled,
                ..ScheduleSpec::from(&schedule)
            },
        )
        .await
    }

    async fn patch_schedule(&self, id: i64, row: Value) -> Result<Schedule, Error> {
        let builder = self
            .rest
            .from("schedules")
            .select("*")
            .eq("id", id.to_string())
            .update(row.to_string());
        let (rows, _): (Vec<Schedule>, _) = self.send(builder).await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| schedule_not_found(id))
    }

    /// Deletes schedule `id` (its jobs stay, unlinked); answers whether one was.
    pub async fn delete_schedule(&self, id: i64) -> Result<bool, Error> {
        let builder = self
            .rest
            .from("schedules")
            .eq("id", id.to_string())
            .delete()
            .select("id");
        let (deleted, _): (Vec<Value>, _) = self.send(builder).await?;
        Ok(!deleted.is_empty())
    }

    /// "Run now": a job of schedule `id` at once, its ticks unchanged.
    pub async fn run_schedule(&self, id: i64) -> Result<Job, Error> {
        self.rpc("run_schedule", json!({ "id": id })).await
    }

    /// The jobs schedule `id` made, newest first.
    pub async fn schedule_jobs(&self, id: i64, limit: usize) -> Result<Vec<Job>, Error> {
        let builder = self
            .rest
            .from("jobs")
            .select("*")
            .eq("schedule_id", id.to_string())
            .order("id.desc")
            .limit(limit.max(1));
        Ok(self.send(builder).await?.0)
    }

    /// The enabled schedules, those with no tick computed first, then by next tick.
    pub(crate) async fn enabled_schedules(&self) -> Result<Vec<Schedule>, Error> {
        let builder = self
            .rest
            .from("schedules")
            .select("*")
            .eq("enabled", "true")
            .order("next_run_at.asc.nullsfirst")
            .limit(1000);
        Ok(self.send(builder).await?.0)
    }

    /// Does `firing` for schedule `id` if it still waits for `firing.due`; answers the
    /// job made, if this call made one.
    pub(crate) async fn fire_schedule(
        &self,
        id: i64,
        firing: &Firing,
    ) -> Result<Option<Job>, Error> {
        let jobs: Vec<Job> = self
            .rpc(
                "fire_schedule",
                json!({ "id": id, "due": firing.due, "next_run_at": firing.next, "tick": firing.tick }),
            )
            .await?;
        Ok(jobs.into_iter().next())
    }

    /// Gives schedule `id` its first tick if it still has none (another worker may
    /// have given it one meanwhile).
    pub(crate) async fn start_schedule(&self, id: i64, next: DateTime<Utc>) -> Result<(), Error> {
        let builder = self
            .rest
            .from("schedules")
            .eq("id", id.to_string())
            .is("next_run_at", "null")
            .update(json!({ "next_run_at": next }).to_string());
        let _: (Value, _) = self.send(builder).await?;
        Ok(())
    }

    /// Says on schedule `id` why no tick of it can be computed.
    pub(crate) async fn report_schedule_problem(
        &self,
        id: i64,
        problem: &str,
    ) -> Result<(), Error> {
        let builder = self
            .rest
            .from("schedules")
            .eq("id", id.to_string())
            .update(json!({ "problem": problem }).to_string());
        let _: (Value, _) = self.send(builder).await?;
        Ok(())
    }

    /// The kinds the user paused, for every worker of theirs.
    pub async fn paused_kinds(&self) -> Result<Vec<PausedKind>, Error> {
        let builder = self.rest.from("paused_kinds").select("*").order("kind.asc");
        Ok(self.send(builder).await?.0)
    }

    /// Pauses `kind` for all of the user's workers: none starts a job of it until
    /// [`Self::resume_kind`]. Pausing a paused kind changes nothing.
    pub async fn pause_kind(&self, kind: &str) -> Result<(), Error> {
        if kind.trim().is_empty() {
            return Err(Error::Invalid("name the kind to pause".into()));
        }
        let builder = self
            .rest
            .from("paused_kinds")
            .insert(json!({ "kind": kind }).to_string());
        match self.send::<Value>(builder).await {
            Ok(_) => Ok(()),
            Err(error) if error.server_code() == Some("23505") => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Resumes `kind`; answers whether it was paused.
    pub async fn resume_kind(&self, kind: &str) -> Result<bool, Error> {
        let builder = self
            .rest
            .from("paused_kinds")
            .eq("kind", kind)
            .delete()
            .select("kind");
        let (deleted, _): (Vec<Value>, _) = self.send(builder).await?;
        Ok(!deleted.is_empty())
    }
}

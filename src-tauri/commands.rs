//! The commands the web UI calls. Each is a thin call into the core (or the shell's
//! connection); the UI never talks to Supabase itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use jobdeck_core::{
    Activity, ActivitySpan, BulkAction, Error, ErrorBody, ErrorCode, Factor, Job, JobFilter,
    JobStatus, LogLine, NewJob, Page, PausedKind, RetentionPolicy, Schedule, ScheduleSpec,
    ScheduleSummary, SessionState, SignOutScope, SignUp, TotpEnrollment,
    schedules::Cron,
    worker::{EnqueueError, WorkerStatus},
};

use crate::{
    events,
    ipc::{
        AppInfo, CommandError, ConnectionView, JobsOpening, LaunchTimings, Preferences,
        SignUpOutcome, commands,
    },
    kinds,
    shell::Shell,
};

commands! {
    /// The app's name and version (the About box).
    async fn app_info(shell) -> AppInfo {
        let package = shell.handle.package_info();
        Ok(AppInfo {
            name: package.name.clone(),
            version: package.version.to_string(),
        })
    }

    /// The UI painted the job list for the first time since launch, at `timings`.
    async fn ui_list_shown(shell, timings: LaunchTimings) -> () {
        shell.list_shown(&timings);
        Ok(())
    }

    async fn preferences_get(shell) -> Preferences {
        Ok(shell.stores.preferences())
    }

    async fn preferences_set(shell, preferences: Preferences) -> Preferences {
        shell.stores.set_preferences(&preferences)?;
        Ok(preferences)
    }

    /// The connection, after reconnecting to the project last used; `null` on first run.
    async fn connection_restore(shell) -> Option<ConnectionView> {
        Ok(shell.restore().await?)
    }

    /// Connects to a Supabase project after checking its Auth server's `/health` and
    /// `/settings` with the key.
    async fn connection_connect(shell, url: String, key: String) -> ConnectionView {
        Ok(shell.connect(&url, &key).await?)
    }

    /// Connects to the local sandbox, starting it when none is running.
    async fn connection_connect_sandbox(shell) -> ConnectionView {
        Ok(shell.connect_sandbox().await?)
    }

    /// Leaves the project (back to the connect screen).
    async fn connection_disconnect(shell) -> () {
        Ok(shell.disconnect().await?)
    }

    async fn auth_sign_in(shell, email: String, password: String) -> SessionState {
        let connection = shell.connection()?;
        connection.session.sign_in_with_password(&email, &password).await?;
        Ok(connection.session.watch().borrow().clone())
    }

    async fn auth_sign_up(shell, email: String, password: String) -> SignUpOutcome {
        let connection = shell.connection()?;
        Ok(match connection.session.sign_up(&email, &password).await? {
            SignUp::Session(_) => SignUpOutcome::SignedIn {
                session: connection.session.watch().borrow().clone(),
            },
            SignUp::ConfirmationSent(user) => SignUpOutcome::ConfirmationSent { email: user.email },
        })
    }

    /// Emails a one-time code and a sign-in link (creating the account if there is
    /// none). `auth_browser_finish` then waits for the link; the code signs in too.
    async fn auth_send_code(shell, email: String) -> () {
        Ok(shell.connection()?.start_email_link(&email).await?)
    }

    /// Signs in with the emailed code; the link of the same message waits no more.
    async fn auth_verify_code(shell, email: String, code: String) -> SessionState {
        let connection = shell.connection()?;
        connection.session.verify_email_code(&email, &code).await?;
        connection.cancel_browser();
        Ok(connection.session.watch().borrow().clone())
    }

    /// The OAuth providers the project has enabled, for "Continue with ..." buttons.
    async fn auth_providers(shell) -> Vec<String> {
        Ok(shell.connection()?.session.auth().providers().await?)
    }

    /// Starts a sign-in through `provider` in the user's browser; answers its URL (to
    /// show when no browser opened). `auth_browser_finish` then waits for it.
    async fn auth_oauth_start(shell, provider: String) -> String {
        Ok(shell.connection()?.start_oauth(&provider).await?)
    }

    /// Waits for the browser to come back from the provider (a few minutes at most)
    /// or from the emailed link (an hour at most) and signs in with what it brings.
    async fn auth_browser_finish(shell) -> SessionState {
        let connection = shell.connection()?;
        connection.finish_browser().await?;
        Ok(connection.session.watch().borrow().clone())
    }

    /// Stops waiting for the browser; `auth_browser_finish` answers `cancelled`.
    async fn auth_browser_cancel(shell) -> () {
        shell.connection()?.cancel_browser();
        Ok(())
    }

    /// Answers the sign-in's second factor with the code from the user's authenticator
    /// app: the session becomes aal2 and the app goes on as signed in.
    async fn auth_verify_totp(shell, code: String) -> SessionState {
        let connection = shell.connection()?;
        let factor = match &*connection.session.watch().borrow() {
            SessionState::SecondFactor { factor_id, .. } => factor_id.clone(),
            _ => return Err(Error::SignedOut.into()),
        };
        connection.session.verify_totp(&factor, &code).await?;
        Ok(connection.session.watch().borrow().clone())
    }

    /// The account's second factors, as Auth knows them now.
    async fn account_factors(shell) -> Vec<Factor> {
        let session = &shell.connection()?.session;
        let token = session.access_token().await?;
        Ok(session.auth().user(&token).await?.factors)
    }

    /// Starts adding an authenticator app: its QR code and secret, to be confirmed
    /// with its first code by `account_confirm_totp`.
    async fn account_enroll_totp(shell, name: String) -> TotpEnrollment {
        Ok(shell.connection()?.session.enroll_totp(&name).await?)
    }

    /// Confirms a new factor with its first code; answers the account's factors.
    async fn account_confirm_totp(shell, factor_id: String, code: String) -> Vec<Factor> {
        Ok(shell.connection()?.session.verify_totp(&factor_id, &code).await?.factors)
    }

    /// Removes a factor (a verified one only from a session that used it to sign in).
    async fn account_remove_factor(shell, factor_id: String) -> Vec<Factor> {
        Ok(shell.connection()?.session.unenroll_factor(&factor_id).await?.factors)
    }

    /// Signs out; this app's running jobs are handed back first.
    async fn auth_sign_out(shell) -> SessionState {
        let connection = shell.connection()?;
        connection.session.sign_out(SignOutScope::Local).await?;
        Ok(connection.session.watch().borrow().clone())
    }

    /// The jobs screen as it opens under `filter` (its kinds, first page and counts, in
    /// one round trip; at launch read already); `null` while not signed in.
    async fn jobs_opening(shell, filter: JobFilter) -> Option<JobsOpening> {
        Ok(shell.opening(&filter).await?)
    }

    /// How many events about jobs the app has sent the UI so far (see `JobsOpening`).
    async fn job_events_sent(shell) -> u64 {
        let _ = shell;
        Ok(events::job_events_sent())
    }

    /// A page of the user's jobs, newest first.
    async fn jobs_list(shell, filter: JobFilter) -> Page {
        Ok(shell.connection()?.jobs.list(&filter).await?)
    }

    /// How many of the user's jobs are in each status.
    async fn jobs_counts(shell) -> BTreeMap<JobStatus, u64> {
        Ok(shell.connection()?.jobs.counts().await?)
    }

    async fn job_get(shell, id: i64) -> Job {
        Ok(shell.connection()?.jobs.get(id).await?)
    }

    /// Enqueues a job after checking its input against the kind (field-level errors
    /// come back with `field`); this app's worker starts it at once when it has room.
    async fn job_enqueue(shell, job: NewJob) -> Job {
        let connection = shell.connection()?;
        let job = connection.worker.enqueue(&job).await?;
        connection.poke.notify_one();
        Ok(job)
    }

    async fn job_cancel(shell, id: i64) -> Job {
        let connection = shell.connection()?;
        let job = connection.jobs.cancel(id).await?;
        connection.poke.notify_one();
        Ok(job)
    }

    async fn job_retry(shell, id: i64) -> Job {
        let connection = shell.connection()?;
        let job = connection.jobs.retry(id).await?;
        connection.worker.wake();
        connection.poke.notify_one();
        Ok(job)
    }

    /// Enqueues a new job with the same kind and input.
    async fn job_run_again(shell, id: i64) -> Job {
        let connection = shell.connection()?;
        let job = connection.jobs.run_again(id).await?;
        connection.worker.wake();
        connection.poke.notify_one();
        Ok(job)
    }

    /// Deletes a job that is not running; answers whether one was deleted.
    async fn job_delete(shell, id: i64) -> bool {
        Ok(shell.connection()?.jobs.delete(id).await?)
    }

    /// Cancels or retries every job of the filter it applies to; answers how many.
    async fn jobs_bulk(shell, action: BulkAction, filter: JobFilter) -> u64 {
        let connection = shell.connection()?;
        let changed = connection.jobs.bulk(action, &filter).await?;
        connection.worker.wake();
        connection.poke.notify_one();
        Ok(changed)
    }

    /// Opens the kinds file in the user's editor (creating it first if need be).
    async fn kinds_open(shell) -> () {
        let _ = shell;
        kinds::open().await.map_err(|message| {
            CommandError(ErrorBody { code: ErrorCode::Internal, message, field: None })
        })
    }

    /// Job `id`'s log: one attempt's, or every attempt's; only the lines after
    /// `after_seq` of that attempt when given (to follow a running job).
    async fn job_logs(shell, id: i64, attempt: Option<i32>, after_seq: Option<i32>) -> Vec<LogLine> {
        let after = attempt.zip(after_seq);
        Ok(shell.connection()?.jobs.logs(id, attempt, after).await?)
    }

    /// The user's schedules, each with the last job it made.
    async fn schedules_list(shell) -> Vec<ScheduleSummary> {
        Ok(shell.connection()?.jobs.schedule_summaries().await?)
    }

    /// The next `count` ticks of `cron` in `timezone` (at most 20), or why the
    /// expression or zone is refused; nothing is saved.
    async fn schedule_preview(shell, cron: String, timezone: String, count: u8) -> Vec<DateTime<Utc>> {
        let _ = shell;
        Ok(Cron::parse(&cron, &timezone)?.upcoming(Utc::now(), usize::from(count.min(20))))
    }

    /// Saves a new schedule (`id` none) or changes one, after checking its expression,
    /// zone and input (as the enqueue form's, field errors with `field`).
    async fn schedule_save(shell, id: Option<i64>, spec: ScheduleSpec) -> Schedule {
        let connection = shell.connection()?;
        let job = NewJob { kind: spec.kind.clone(), context: spec.context.clone(), ..NewJob::default() };
        connection.worker.registry().prepare(&job).map_err(EnqueueError::Invalid)?;
        let saved = match id {
            Some(id) => connection.jobs.update_schedule(id, &spec).await?,
            None => connection.jobs.create_schedule(&spec).await?,
        };
        connection.worker.schedules_changed();
        Ok(saved)
    }

    /// Pauses or resumes a schedule.
    async fn schedule_set_enabled(shell, id: i64, enabled: bool) -> Schedule {
        let connection = shell.connection()?;
        let schedule = connection.jobs.set_schedule_enabled(id, enabled).await?;
        connection.worker.schedules_changed();
        Ok(schedule)
    }

    /// "Run now": a job of the schedule at once, its ticks unchanged.
    async fn schedule_run(shell, id: i64) -> Job {
        let connection = shell.connection()?;
        let job = connection.jobs.run_schedule(id).await?;
        connection.worker.wake();
        connection.poke.notify_one();
        Ok(job)
    }

    /// Deletes a schedule; the jobs it made stay. Answers whether one was deleted.
    async fn schedule_delete(shell, id: i64) -> bool {
        Ok(shell.connection()?.jobs.delete_schedule(id).await?)
    }

    /// The jobs a schedule made, newest first (the last 50).
    async fn schedule_jobs(shell, id: i64) -> Vec<Job> {
        Ok(shell.connection()?.jobs.schedule_jobs(id, 50).await?)
    }

    /// The kinds paused for all of the user's workers.
    async fn kinds_paused(shell) -> Vec<PausedKind> {
        Ok(shell.connection()?.jobs.paused_kinds().await?)
    }

    /// Pauses (`paused`) or resumes a kind for all of the user's workers; answers the
    /// paused kinds.
    async fn kind_set_paused(shell, kind: String, paused: bool) -> Vec<PausedKind> {
        let connection = shell.connection()?;
        if paused {
            connection.jobs.pause_kind(&kind).await?;
        } else {
            connection.jobs.resume_kind(&kind).await?;
            connection.worker.wake();
        }
        Ok(connection.jobs.paused_kinds().await?)
    }

    /// How long the user keeps ended jobs (empty: everything).
    async fn retention_get(shell) -> RetentionPolicy {
        Ok(shell.connection()?.jobs.retention().await?)
    }

    /// Sets the user's retention policy (an empty one keeps everything); this app's
    /// worker applies it at once, the user's other workers when they hear of it.
    async fn retention_set(shell, policy: RetentionPolicy) -> RetentionPolicy {
        let connection = shell.connection()?;
        let saved = connection.jobs.set_retention(&policy).await?;
        connection.worker.retention_changed();
        Ok(saved)
    }

    /// What the user's jobs did over the last hour, day or week, counted by the
    /// database.
    async fn activity_get(shell, span: ActivitySpan) -> Activity {
        Ok(shell.connection()?.jobs.activity(span).await?)
    }

    async fn worker_status(shell) -> WorkerStatus {
        Ok(shell.connection()?.worker.status())
    }

    async fn worker_pause(shell) -> WorkerStatus {
        let connection = shell.connection()?;
        connection.worker.pause();
        Ok(connection.worker.status())
    }

    async fn worker_resume(shell) -> WorkerStatus {
        let connection = shell.connection()?;
        connection.worker.resume();
        Ok(connection.worker.status())
    }
}

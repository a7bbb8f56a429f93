//! Second factors against a real sandbox: enrolling TOTP, a sign-in that owes its code,
//! and a project whose row-level security lets only aal2 sessions read jobs.

mod support;

use std::sync::Arc;

use jobdeck_core::{
    ErrorCode, JobFilter, JobsClient, MemoryStore, Secret, SessionOwner, SessionState,
};
use jobdeck_sandbox::testing::{TestSandbox, email, totp_code};
use support::{auth, new_job, project};

/// The code an authenticator app shows now for `secret`.
fn code(secret: &Secret) -> String {
    totp_code(secret.expose())
}

#[tokio::test]
async fn a_sign_in_owes_its_totp_code_and_rls_can_require_it() {
    let sandbox = TestSandbox::start().await;
    // The project's policy: jobs are readable only by sessions that passed MFA.
    sandbox
        .database
        .admin()
        .await
        .batch_execute(
            "create policy jobs_need_aal2 on public.jobs as restrictive for select
               to authenticated using ((auth.jwt() ->> 'aal') = 'aal2')",
        )
        .await
        .expect("adds the policy");
    let address = email("mfa");
    sandbox.sign_up(&address, "correct horse").await;

    let laptop_store = Arc::new(MemoryStore::default());
    let laptop = SessionOwner::new(auth(&sandbox), laptop_store.clone()).expect("an owner");
    laptop
        .sign_in_with_password(&address, "correct horse")
        .await
        .expect("signs in");
    let enrollment = laptop.enroll_totp("authenticator").await.expect("enrolls");
    assert!(enrollment.qr_code_svg.contains("<svg"));
    assert!(enrollment.uri.expose().starts_with("otpauth://totp/"));
    assert!(
        matches!(*laptop.watch().borrow(), SessionState::Active { .. }),
        "an unverified factor asks nothing"
    );
    let wrong = laptop
        .verify_totp(&enrollment.factor_id, "000000")
        .await
        .expect_err("a wrong code");
    assert_eq!(wrong.code(), ErrorCode::Validation);
    let user = laptop
        .verify_totp(&enrollment.factor_id, &code(&enrollment.secret))
        .await
        .expect("confirms the factor");
    assert_eq!(
        user.verified_totp().map(|f| f.id.as_str()),
        Some(enrollment.factor_id.as_str())
    );
    let jobs = JobsClient::new(&project(&sandbox), Arc::clone(&laptop));
    let job = jobs
        .enqueue(&new_job("noop", serde_json::json!({})))
        .await
        .expect("enqueues");
    let listed = jobs.list(&JobFilter::default()).await.expect("lists");
    assert_eq!(
        listed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [job.id]
    );

    // Another device signs in with the password: aal1, and it owes the code.
    let desktop_store = Arc::new(MemoryStore::default());
    let desktop = SessionOwner::new(auth(&sandbox), desktop_store.clone()).expect("an owner");
    desktop
        .sign_in_with_password(&address, "correct horse")
        .await
        .expect("signs in");
    let owed = SessionState::SecondFactor {
        email: Some(address.clone()),
        factor_id: enrollment.factor_id.clone(),
    };
    assert_eq!(*desktop.watch().borrow(), owed);
    let desktop_jobs = JobsClient::new(&project(&sandbox), Arc::clone(&desktop));
    let hidden = desktop_jobs
        .list(&JobFilter::default())
        .await
        .expect("lists");
    assert!(hidden.jobs.is_empty(), "the policy hides jobs from aal1");

    // Restarted before answering: it still owes the code.
    let restarted = SessionOwner::new(auth(&sandbox), desktop_store.clone()).expect("an owner");
    assert_eq!(*restarted.watch().borrow(), owed);
    let user = restarted
        .verify_totp(&enrollment.factor_id, &code(&enrollment.secret))
        .await
        .expect("answers the challenge");
    assert_eq!(user.email.as_deref(), Some(address.as_str()));
    assert!(matches!(
        *restarted.watch().borrow(),
        SessionState::Active { .. }
    ));
    let restarted_jobs = JobsClient::new(&project(&sandbox), Arc::clone(&restarted));
    let seen = restarted_jobs
        .list(&JobFilter::default())
        .await
        .expect("lists");
    assert_eq!(seen.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);

    // Removed from an aal2 session: the user has no factor, and sign-ins owe nothing.
    let user = restarted
        .unenroll_factor(&enrollment.factor_id)
        .await
        .expect("removes the factor");
    assert!(user.factors.is_empty());
    let phone =
        SessionOwner::new(auth(&sandbox), Arc::new(MemoryStore::default())).expect("an owner");
    phone
        .sign_in_with_password(&address, "correct horse")
        .await
        .expect("signs in");
    assert!(matches!(
        *phone.watch().borrow(),
        SessionState::Active { .. }
    ));
}

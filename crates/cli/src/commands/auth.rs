//! `login`, `logout`, `whoami`.

use std::{io::BufRead as _, process::ExitCode};

use anyhow::Context as _;
use clap::Args;
use jobdeck_core::SignOutScope;

use super::Context;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The account's email address.
    email: String,
    /// Read the password from the first line of standard input (for scripts).
    #[arg(long, conflicts_with = "otp")]
    password_stdin: bool,
    /// Sign in with a one-time code sent by email instead of a password.
    #[arg(long)]
    otp: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// End every session of this account, on every device.
    #[arg(long)]
    global: bool,
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn login(ctx: &Context, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let session = ctx.session()?;
    let user = if args.otp {
        session.send_email_code(&args.email).await?;
        let code = read_line(&format!("Enter the code sent to {}: ", args.email))?;
        session.verify_email_code(&args.email, &code).await?
    } else {
        let password = if args.password_stdin {
            read_line("")?
        } else {
            rpassword::prompt_password(format!("Password for {}: ", args.email))
                .context("reading the password")?
        };
        session
            .sign_in_with_password(&args.email, &password)
            .await?
    };
    ctx.print(
        &serde_json::json!({ "email": user.email, "id": user.id }),
        &format!(
            "Signed in as {}.",
            user.email.as_deref().unwrap_or(&user.id)
        ),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(ctx: &Context, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let scope = if args.global {
        SignOutScope::Global
    } else {
        SignOutScope::Local
    };
    ctx.session()?.sign_out(scope).await?;
    ctx.print(&serde_json::json!({ "signed_out": true }), "Signed out.");
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(ctx: &Context) -> anyhow::Result<ExitCode> {
    let session = ctx.session()?;
    // Asks Auth, so a revoked session is reported as such.
    let token = session.access_token().await?;
    let user = session.auth().user(&token).await?;
    ctx.print(
        &serde_json::json!({ "email": user.email, "id": user.id, "project": ctx.project.url() }),
        &format!(
            "{} ({}) on {}",
            user.email.as_deref().unwrap_or("-"),
            user.id,
            ctx.project.url()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

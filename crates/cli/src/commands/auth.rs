//! `login`, `logout`, `whoami`.

use std::{io::BufRead as _, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::Args;
use jobdeck_core::{OAuthFlow, SessionOwner, SignOutScope, User};

use super::Context;
use crate::exit::Invalid;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The account's email address (not with --provider).
    #[arg(required_unless_present = "provider", conflicts_with = "provider")]
    email: Option<String>,
    /// Read the password from the first line of standard input (for scripts).
    #[arg(long, conflicts_with_all = ["otp", "provider"])]
    password_stdin: bool,
    /// Sign in with a one-time code sent by email instead of a password.
    #[arg(long, conflicts_with = "provider")]
    otp: bool,
    /// Sign in through one of the project's OAuth providers (github, google, ...) in
    /// the browser. The project must allow `http://127.0.0.1` redirects, which
    /// Supabase Auth does on any port.
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// With --provider: print the URL to open instead of opening a browser.
    #[arg(long, requires = "provider")]
    no_browser: bool,
    /// With --provider: how long to wait for the browser, in seconds.
    #[arg(long, requires = "provider", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
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
    let user = if let Some(provider) = &args.provider {
        login_with_provider(&session, provider, &args).await?
    } else {
        let email = args.email.clone().unwrap_or_default();
        login_with_email(&session, &email, &args).await?
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

/// The browser's sign-in: the URL always printed (standard error), opened unless
/// asked not to or no browser can be; Ctrl-C cancels.
async fn login_with_provider(
    session: &SessionOwner,
    provider: &str,
    args: &LoginArgs,
) -> anyhow::Result<User> {
    let enabled = session.auth().providers().await?;
    if !enabled.iter().any(|p| p == provider) {
        return Err(Invalid(if enabled.is_empty() {
            format!("{provider} is not enabled in this project, which has no OAuth providers")
        } else {
            format!(
                "{provider} is not enabled in this project (enabled: {})",
                enabled.join(", ")
            )
        })
        .into());
    }
    let flow = OAuthFlow::start(session.auth(), provider).await?;
    let opened = !args.no_browser && webbrowser::open(flow.url()).is_ok();
    if opened {
        eprintln!("Opened your browser to sign in with {provider}. If it did not open, visit:");
    } else {
        eprintln!("To sign in with {provider}, open this URL in a browser on this machine:");
    }
    eprintln!("  {}", flow.url());
    eprintln!("Waiting for the browser (Ctrl-C cancels)...");
    let cancelled = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    Ok(session
        .sign_in_with_oauth(flow, Duration::from_secs(args.timeout), cancelled)
        .await?)
}

async fn login_with_email(
    session: &SessionOwner,
    email: &str,
    args: &LoginArgs,
) -> anyhow::Result<User> {
    Ok(if args.otp {
        session.send_email_code(email).await?;
        let code = read_line(&format!("Enter the code sent to {email}: "))?;
        session.verify_email_code(email, &code).await?
    } else {
        let password = if args.password_stdin {
            read_line("")?
        } else {
            rpassword::prompt_password(format!("Password for {email}: "))
                .context("reading the password")?
        };
        session.sign_in_with_password(email, &password).await?
    })
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

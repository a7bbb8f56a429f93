//! `login`, `logout`, `whoami`, and `mfa` (the account's second factors).

use std::{io::BufRead as _, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use jobdeck_core::{
    EmailLinkFlow, OAuthFlow, SessionOwner, SessionState, SignOutScope, User,
    auth::oauth::EMAIL_LINK_TIMEOUT,
};

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
    /// Sign in with the one-time code sent by email, or the link in the same message
    /// (followed in a browser on this machine), instead of a password.
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
    let mut user = if let Some(provider) = &args.provider {
        login_with_provider(&session, provider, &args).await?
    } else {
        let email = args.email.clone().unwrap_or_default();
        login_with_email(&session, &email, &args).await?
    };
    let owed = match &*session.watch().borrow() {
        SessionState::SecondFactor { factor_id, .. } => Some(factor_id.clone()),
        _ => None,
    };
    if let Some(factor) = owed {
        // The next line of input, so a script can send the password and the code.
        let code = read_line("Code from your authenticator app: ")?;
        user = match session.verify_totp(&factor, &code).await {
            Ok(user) => user,
            Err(error) => {
                // Half a sign-in is not kept: the next login starts over.
                if let Err(error) = session.sign_out(SignOutScope::Local).await {
                    tracing::warn!(%error, "ending the unfinished session");
                }
                return Err(error.into());
            }
        };
    }
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
        login_with_code_or_link(session, email).await?
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

/// The emailed code typed here, or the link in the same message followed in a browser
/// on this machine: whichever comes first signs in. Without a terminal to type into
/// (standard input at its end), only the link is waited for.
async fn login_with_code_or_link(session: &SessionOwner, email: &str) -> anyhow::Result<User> {
    let flow = EmailLinkFlow::start(session.auth(), email, true).await?;
    let prompt = format!("Enter the code sent to {email}, or follow the link in the message: ");
    // A thread of its own, not the runtime's blocking pool: a read that never returns
    // must not keep the program from exiting once the link has signed in.
    let (typed, code) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = typed.send(read_line(&prompt));
    });
    let link = session.sign_in_with_email_link(flow, EMAIL_LINK_TIMEOUT, async {
        let _ = tokio::signal::ctrl_c().await;
    });
    tokio::pin!(link);
    tokio::select! {
        signed_in = &mut link => Ok(signed_in?),
        line = code => match line {
            Ok(Ok(code)) if !code.trim().is_empty() => {
                Ok(session.verify_email_code(email, &code).await?)
            }
            Ok(Err(error)) => Err(error),
            _ => Ok(link.await?),
        },
    }
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

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Add an authenticator app: shows its QR code and secret; confirm with `mfa confirm`.
    Enroll {
        /// A name for it, told apart from other factors.
        #[arg(long, default_value = "Authenticator app")]
        name: String,
    },
    /// Confirm a new factor with its first code (read from standard input).
    Confirm { factor_id: String },
    /// The account's second factors.
    List,
    /// Remove a factor (a verified one only from a session that used it to sign in).
    Remove { factor_id: String },
}

pub async fn mfa(ctx: &Context, command: MfaCommand) -> anyhow::Result<ExitCode> {
    let session = ctx.session()?;
    match command {
        MfaCommand::Enroll { name } => {
            let enrollment = session.enroll_totp(&name).await?;
            let uri = enrollment.uri.expose();
            let qr = qrcode::QrCode::new(uri.as_bytes())
                .map(|code| {
                    code.render::<qrcode::render::unicode::Dense1x2>()
                        .dark_color(qrcode::render::unicode::Dense1x2::Light)
                        .light_color(qrcode::render::unicode::Dense1x2::Dark)
                        .build()
                })
                .unwrap_or_default();
            ctx.print(
                &serde_json::json!({
                    "factor_id": enrollment.factor_id,
                    "uri": uri,
                    "secret": enrollment.secret.expose(),
                }),
                &format!(
                    "Scan this with your authenticator app, or enter the secret {}:\n\n{qr}\n\
                     Then confirm it with its first code:\n  jobdeck mfa confirm {}",
                    enrollment.secret.expose(),
                    enrollment.factor_id
                ),
            );
        }
        MfaCommand::Confirm { factor_id } => {
            let code = read_line("Code from your authenticator app: ")?;
            let user = session.verify_totp(&factor_id, &code).await?;
            ctx.print(
                &serde_json::json!({ "factor_id": factor_id, "verified": true }),
                &format!(
                    "Two-step sign-in is on for {}.",
                    user.email.as_deref().unwrap_or(&user.id)
                ),
            );
        }
        MfaCommand::List => {
            // Asked of Auth, not the stored session: another device may have changed them.
            let token = session.access_token().await?;
            let user = session.auth().user(&token).await?;
            let lines: Vec<String> = user
                .factors
                .iter()
                .map(|f| {
                    format!(
                        "{}  {}  {}  {}",
                        f.id,
                        f.factor_type,
                        f.status,
                        f.friendly_name.as_deref().unwrap_or("")
                    )
                })
                .collect();
            let human = if lines.is_empty() {
                "No second factors.".to_string()
            } else {
                lines.join("\n")
            };
            ctx.print(&user.factors, &human);
        }
        MfaCommand::Remove { factor_id } => {
            session.unenroll_factor(&factor_id).await?;
            ctx.print(
                &serde_json::json!({ "factor_id": factor_id, "removed": true }),
                "Removed.",
            );
        }
    }
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

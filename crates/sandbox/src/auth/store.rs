//! Users, sessions, refresh tokens and one-time codes in the `auth` schema, reached as
//! `supabase_auth_admin` (the role GoTrue connects as). Every statement the auth routes
//! run is here.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha224};
use tokio_postgres::{Client, types::Type};
use uuid::Uuid;

use super::error::AuthError;
use crate::keys::random_token;

/// A user as GoTrue answers it, built by PostgreSQL from `auth.users`, identities and
/// (only when there are any, as GoTrue omits an empty list) second factors.
const USER_JSON: &str = "
jsonb_build_object(
  'id', u.id, 'aud', coalesce(u.aud, 'authenticated'), 'role', coalesce(u.role, 'authenticated'),
  'email', coalesce(u.email, ''), 'phone', coalesce(u.phone, ''),
  'email_confirmed_at', u.email_confirmed_at, 'confirmed_at', u.confirmed_at,
  'last_sign_in_at', u.last_sign_in_at,
  'app_metadata', coalesce(u.raw_app_meta_data, '{}'), 'user_metadata', coalesce(u.raw_user_meta_data, '{}'),
  'identities', coalesce((select jsonb_agg(jsonb_build_object(
      'identity_id', i.id, 'id', i.provider_id, 'user_id', i.user_id, 'identity_data', i.identity_data,
      'provider', i.provider, 'last_sign_in_at', i.last_sign_in_at, 'created_at', i.created_at,
      'updated_at', i.updated_at, 'email', i.email)) from auth.identities i where i.user_id = u.id), '[]'),
  'created_at', u.created_at, 'updated_at', u.updated_at, 'is_anonymous', u.is_anonymous)
|| coalesce((select jsonb_build_object('factors', jsonb_agg(jsonb_build_object(
      'id', f.id, 'friendly_name', f.friendly_name, 'factor_type', f.factor_type, 'status', f.status,
      'created_at', f.created_at, 'updated_at', f.updated_at, 'last_challenged_at', f.last_challenged_at)
      order by f.created_at))
    from auth.mfa_factors f where f.user_id = u.id having count(*) > 0), '{}')";

/// What a password check needs.
#[derive(Debug)]
pub struct Credentials {
    pub id: Uuid,
    pub password_hash: Option<String>,
    pub confirmed: bool,
}

pub async fn user_json(client: &Client, id: Uuid) -> Result<Option<Value>, AuthError> {
    let sql =
        format!("select {USER_JSON} from auth.users u where u.id = $1 and u.deleted_at is null");
    // Typed parameters: one round trip (no separate prepare); every REST-driven
    // worker asks for its user once per claimed batch.
    let rows = client.query_typed(&sql, &[(&id, Type::UUID)]).await?;
    Ok(rows.first().map(|row| row.get(0)))
}

/// Every user that is not deleted, oldest first, in one query.
pub async fn list_users(client: &Client) -> Result<Vec<Value>, AuthError> {
    let sql = format!(
        "select coalesce(jsonb_agg({USER_JSON} order by u.created_at), '[]')
           from auth.users u where u.deleted_at is null"
    );
    let users: Value = client.query_one(&sql, &[]).await?.get(0);
    Ok(match users {
        Value::Array(users) => users,
        _ => Vec::new(),
    })
}

/// Deletes a user; their sessions, identities and jobs go with them (ON DELETE
/// CASCADE). False if there was no such user.
pub async fn delete_user(client: &Client, id: Uuid) -> Result<bool, AuthError> {
    Ok(client
        .execute("delete from auth.users where id = $1", &[&id])
        .await?
        > 0)
}

/// A new email address for `user`; `email_exists` if another user has it.
pub async fn set_email(client: &Client, user: Uuid, email: &str) -> Result<(), AuthError> {
    match client
        .execute(
            "update auth.users set email = $2, updated_at = now() where id = $1",
            &[&user, &email],
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if error.code().is_some_and(|c| c.code() == "23505") => Err(AuthError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "email_exists",
            "A user with this email address has already been registered",
        )),
        Err(error) => Err(error.into()),
    }
}

pub async fn set_password_hash(client: &Client, user: Uuid, hash: &str) -> Result<(), AuthError> {
    client
        .execute(
            "update auth.users set encrypted_password = $2, updated_at = now() where id = $1",
            &[&user, &hash],
        )
        .await?;
    Ok(())
}

/// Merges `data` (an object) into the user's metadata.
pub async fn merge_user_metadata(
    client: &Client,
    user: Uuid,
    data: &Value,
) -> Result<(), AuthError> {
    client
        .execute(
            "update auth.users set raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || $2,
                    updated_at = now()
              where id = $1",
            &[&user, data],
        )
        .await?;
    Ok(())
}

/// How GoTrue stores an emailed code: never the code, a hash of address and code.
pub fn email_code_hash(email: &str, code: &str) -> String {
    let digest = Sha224::digest(format!("{email}{code}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keeps `code` (hashed) as the user's one emailed code, replacing an earlier one.
pub async fn save_email_code(
    client: &Client,
    user: Uuid,
    email: &str,
    code: &str,
) -> Result<(), AuthError> {
    client
        .execute(
            "insert into auth.one_time_tokens (user_id, token_type, token_hash, relates_to)
             values ($1, 'email_otp', $2, $3)
             on conflict (user_id, token_type) do update
               set token_hash = excluded.token_hash, relates_to = excluded.relates_to,
                   created_at = now(), updated_at = now()",
            &[&user, &email_code_hash(email, code), &email],
        )
        .await?;
    Ok(())
}

/// Uses up the emailed code whose hash is `hash` (see [`email_code_hash`]; the link in
/// the mail carries the hash itself) if it is younger than `lifetime_seconds` and, when
/// `email` is given, that address's; confirms the address. Answers the user, or `None`.
pub async fn use_email_code(
    client: &Client,
    email: Option<&str>,
    hash: &str,
    lifetime_seconds: f64,
) -> Result<Option<Uuid>, AuthError> {
    let row = client
        .query_opt(
            "with used as (
               delete from auth.one_time_tokens t using auth.users u
                where t.user_id = u.id and ($1::text is null or lower(u.email) = $1)
                  and t.token_type = 'email_otp' and t.token_hash = $2
                  and t.created_at > now() at time zone 'utc' - make_interval(secs => $3)
                returning u.id)
             update auth.users u set email_confirmed_at = coalesce(u.email_confirmed_at, now())
               from used where u.id = used.id
             returning u.id",
            &[&email, &hash, &lifetime_seconds],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

pub async fn find_by_email(client: &Client, email: &str) -> Result<Option<Credentials>, AuthError> {
    let row = client
        .query_opt(
            "select id, encrypted_password, email_confirmed_at is not null from auth.users
              where lower(email) = lower($1) and deleted_at is null",
            &[&email],
        )
        .await?;
    Ok(row.map(|row| Credentials {
        id: row.get(0),
        password_hash: row.get(1),
        confirmed: row.get(2),
    }))
}

/// Whose word a new user's identity rests on: the email address itself, or an OAuth
/// provider's account (its subject).
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub provider: &'a str,
    /// The provider's id of the account; an email identity's is the user's id.
    pub subject: Option<&'a str>,
}

impl Identity<'_> {
    pub const EMAIL: Identity<'static> = Identity {
        provider: "email",
        subject: None,
    };
}

/// Creates a user with one identity; answers its JSON, or `user_already_exists`.
pub async fn create_user(
    client: &Client,
    email: &str,
    password_hash: Option<&str>,
    confirmed: bool,
    user_metadata: &Value,
    app_metadata: &Value,
    identity: Identity<'_>,
) -> Result<Value, AuthError> {
    let id = Uuid::new_v4();
    let mut app = json!({ "provider": identity.provider, "providers": [identity.provider] });
    if let (Some(app), Some(extra)) = (app.as_object_mut(), app_metadata.as_object()) {
        app.extend(extra.clone());
    }
    let sql = "with u as (
           insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                                   raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous)
           values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, $3,
                   case when $4 then now() end, $5, $6, now(), now(), false)
           returning *)
         insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at,
                                      last_sign_in_at)
         select coalesce($8, u.id::text), u.id, jsonb_build_object('sub', coalesce($8, u.id::text),
                'email', u.email, 'email_verified', $4, 'phone_verified', false), $7, now(), now(),
                case when $8 is not null then now() end
           from u";
    match client
        .execute(
            sql,
            &[
                &id,
                &email,
                &password_hash,
                &confirmed,
                &app,
                user_metadata,
                &identity.provider,
                &identity.subject,
            ],
        )
        .await
    {
        Ok(_) => {}
        Err(error) if error.code().is_some_and(|c| c.code() == "23505") => {
            return Err(AuthError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "user_already_exists",
                "User already registered",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    user_json(client, id)
        .await?
        .ok_or_else(|| AuthError::internal("a new user vanished"))
}

/// A session as it is handed to its client: the refresh token the client now holds,
/// the user, and the session's assurance level and authentication methods (the `aal`
/// and `amr` claims), which GoTrue derives from the methods recorded for the session.
#[derive(Debug)]
pub struct Issued {
    pub session: Uuid,
    pub refresh_token: String,
    pub user: Value,
    pub aal: String,
    pub amr: Value,
}

/// How a session was authenticated that makes it aal2 (GoTrue's `IsAAL2Claim`).
const SECOND_FACTOR_METHODS: &str = "('totp', 'mfa/phone', 'mfa/webauthn')";

/// `session` with `refresh_token`, as [`Issued`]: the user and the claims read in one
/// query.
pub async fn issued(
    client: &impl tokio_postgres::GenericClient,
    session: Uuid,
    refresh_token: String,
) -> Result<Issued, AuthError> {
    let sql = format!(
        "select {USER_JSON},
                coalesce((select jsonb_agg(jsonb_build_object(
                            'method', c.authentication_method,
                            'timestamp', extract(epoch from c.updated_at)::bigint)
                          order by c.updated_at desc)
                     from auth.mfa_amr_claims c where c.session_id = s.id), '[]'),
                case when exists (select 1 from auth.mfa_amr_claims c where c.session_id = s.id
                                    and c.authentication_method in {SECOND_FACTOR_METHODS})
                     then 'aal2' else 'aal1' end
           from auth.sessions s join auth.users u on u.id = s.user_id
          where s.id = $1 and u.deleted_at is null"
    );
    let row = client
        .query_opt(&sql, &[&session])
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    Ok(Issued {
        session,
        refresh_token,
        user: row.get(0),
        amr: row.get(1),
        aal: row.get(2),
    })
}

/// A new session with its first refresh token, authenticated by `method` (the first
/// entry of its `amr`).
pub async fn start_session(client: &Client, user: Uuid, method: &str) -> Result<Issued, AuthError> {
    let session = Uuid::new_v4();
    let token = random_token(32);
    client
        .execute(
            "with s as (insert into auth.sessions (id, user_id, created_at, updated_at, aal)
                        values ($1, $2, now(), now(), 'aal1') returning id),
                  t as (insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
                        select '00000000-0000-0000-0000-000000000000', $3, $2::text, false, now(), now(), s.id from s),
                  c as (insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method)
                        select s.id, now(), now(), $4 from s)
             update auth.users set last_sign_in_at = now(), updated_at = now() where id = $2",
            &[&session, &user, &token, &method],
        )
        .await?;
    issued(client, session, token).await
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Refreshed {
    /// (session, the refresh token the client should now hold)
    Ok(Uuid, String),
    NotFound,
    /// Reused outside the reuse interval: the session is gone.
    AlreadyUsed,
}

/// Rotates `token`. A token that was already rotated answers the session's current
/// token if it is that token's parent or was rotated within `reuse_interval` seconds;
/// any other reuse revokes the whole session (someone else may hold the token).
pub async fn refresh(
    client: &mut Client,
    token: &str,
    reuse_interval: f64,
) -> Result<Refreshed, AuthError> {
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "select rt.revoked, rt.session_id,
                    rt.updated_at + make_interval(secs => $2) > now()
               from auth.refresh_tokens rt join auth.sessions s on s.id = rt.session_id
              where rt.token = $1
              for update of rt, s",
            &[&token, &reuse_interval],
        )
        .await?
    else {
        return Ok(Refreshed::NotFound);
    };
    let (revoked, session, within_interval): (Option<bool>, Uuid, bool) =
        (row.get(0), row.get(1), row.get(2));
    let outcome = if revoked.unwrap_or(false) {
        let active = tx
            .query_opt(
                "select token, parent from auth.refresh_tokens
                  where session_id = $1 and not coalesce(revoked, false) order by id desc limit 1",
                &[&session],
            )
            .await?;
        match active {
            Some(active)
                if within_interval
                    || active.get::<_, Option<String>>(1).as_deref() == Some(token) =>
            {
                Refreshed::Ok(session, active.get(0))
            }
            _ => {
                tx.execute("delete from auth.sessions where id = $1", &[&session])
                    .await?;
                Refreshed::AlreadyUsed
            }
        }
    } else {
        let next = random_token(32);
        tx.execute(
            "with old as (update auth.refresh_tokens set revoked = true, updated_at = now()
                           where token = $1 returning session_id, user_id)
             insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
             select '00000000-0000-0000-0000-000000000000', $2, old.user_id, false, now(), now(), $1, old.session_id from old",
            &[&token, &next],
        )
        .await?;
        tx.execute(
            "update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now() where id = $1",
            &[&session],
        )
        .await?;
        Refreshed::Ok(session, next)
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The assurance level of `session` (`aal1`, `aal2`), or `None` if it is gone.
pub async fn session_aal(client: &Client, session: Uuid) -> Result<Option<String>, AuthError> {
    // Typed parameters: one round trip; every JWT endpoint asks this first.
    let rows = client
        .query_typed(
            "select coalesce(aal, 'aal1') from auth.sessions where id = $1",
            &[(&session, Type::UUID)],
        )
        .await?;
    Ok(rows.first().map(|row| row.get(0)))
}

/// Ends sessions of `user`: all of them (`global`), only `session` (`local`), or all
/// but `session` (`others`).
pub async fn end_sessions(
    client: &Client,
    user: Uuid,
    session: Uuid,
    scope: &str,
) -> Result<(), AuthError> {
    let sql = match scope {
        "local" => "delete from auth.sessions where user_id = $1 and id = $2",
        "others" => "delete from auth.sessions where user_id = $1 and id <> $2",
        _ => "delete from auth.sessions where user_id = $1 and $2::uuid is not null",
    };
    client.execute(sql, &[&user, &session]).await?;
    Ok(())
}

/// Signs in the account `subject` of `provider` (whose address is `email`, verified by
/// the provider): its user if the identity is known, else the user with that address
/// (the identity linked to them, as GoTrue links verified addresses), else a new user.
pub async fn sign_in_with_identity(
    client: &Client,
    provider: &str,
    subject: &str,
    email: &str,
    identity_data: &Value,
) -> Result<Uuid, AuthError> {
    let known = client
        .query_opt(
            "update auth.identities set last_sign_in_at = now(), updated_at = now()
              where provider = $1 and provider_id = $2 returning user_id",
            &[&provider, &subject],
        )
        .await?;
    if let Some(row) = known {
        return Ok(row.get(0));
    }
    if let Some(found) = find_by_email(client, email).await? {
        client
            .execute(
                "with i as (
                   insert into auth.identities (provider_id, user_id, identity_data, provider,
                                                created_at, updated_at, last_sign_in_at)
                   values ($2, $1, $4, $3, now(), now(), now()))
                 update auth.users
                    set raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'), '{providers}',
                          coalesce(raw_app_meta_data -> 'providers', '[]') || to_jsonb($3::text)),
                        email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now()
                  where id = $1",
                &[&found.id, &subject, &provider, identity_data],
            )
            .await?;
        return Ok(found.id);
    }
    let user = create_user(
        client,
        email,
        None,
        true,
        identity_data,
        &json!({}),
        Identity {
            provider,
            subject: Some(subject),
        },
    )
    .await?;
    user["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| AuthError::internal("a new user without an id"))
}

/// A sign-in through a provider, between `/authorize` and the provider's answer.
#[derive(Debug)]
pub struct Flow {
    /// Where the browser goes at the end.
    pub referrer: String,
    pub expired: bool,
}

/// Starts a flow: with `challenge` (method, challenge) a PKCE one, whose auth code is
/// made now and handed out only once the provider (or the emailed link) has answered.
/// An emailed link's flow knows its `user` from the start.
pub async fn start_flow(
    client: &Client,
    provider: &str,
    method: &str,
    challenge: Option<(&str, &str)>,
    referrer: &str,
    user: Option<Uuid>,
) -> Result<Uuid, AuthError> {
    let id = Uuid::new_v4();
    let auth_code = challenge.map(|_| Uuid::new_v4().to_string());
    client
        .execute(
            "insert into auth.flow_state (id, auth_code, code_challenge_method, code_challenge,
                                          provider_type, created_at, updated_at,
                                          authentication_method, referrer, user_id)
             values ($1, $2, $3, $4, $5, now(), now(), $6, $7, $8)",
            &[
                &id,
                &auth_code,
                &challenge.map(|c| c.0),
                &challenge.map(|c| c.1),
                &provider,
                &method,
                &referrer,
                &user,
            ],
        )
        .await?;
    Ok(id)
}

/// The emailed link of `user` was followed: their latest PKCE flow by `method` hands
/// out its auth code (GoTrue's `issueAuthCode`); `None` if there is none.
pub async fn issue_flow_code(
    client: &Client,
    user: Uuid,
    method: &str,
) -> Result<Option<String>, AuthError> {
    let row = client
        .query_opt(
            "update auth.flow_state set auth_code_issued_at = now(), updated_at = now()
              where id = (select id from auth.flow_state
                           where user_id = $1 and authentication_method = $2
                             and auth_code is not null
                           order by created_at desc limit 1)
              returning auth_code",
            &[&user, &method],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// The flow `id`, if it exists; `expired` past `lifetime_seconds` from its start.
pub async fn flow(
    client: &Client,
    id: Uuid,
    lifetime_seconds: f64,
) -> Result<Option<Flow>, AuthError> {
    let row = client
        .query_opt(
            "select coalesce(referrer, ''), created_at + make_interval(secs => $2) < now()
               from auth.flow_state where id = $1",
            &[&id, &lifetime_seconds],
        )
        .await?;
    Ok(row.map(|row| Flow {
        referrer: row.get(0),
        expired: row.get(1),
    }))
}

/// The provider answered for `user`: a PKCE flow now hands out its auth code (answered:
/// the app exchanges it); an implicit flow is over (deleted: the session goes in the
/// redirect's fragment).
pub async fn finish_flow(
    client: &Client,
    id: Uuid,
    user: Uuid,
) -> Result<Option<String>, AuthError> {
    let row = client
        .query_opt(
            "update auth.flow_state set user_id = $2, auth_code_issued_at = now(), updated_at = now()
              where id = $1 and auth_code is not null returning auth_code",
            &[&id, &user],
        )
        .await?;
    if row.is_none() {
        client
            .execute("delete from auth.flow_state where id = $1", &[&id])
            .await?;
    }
    Ok(row.map(|row| row.get(0)))
}

/// Why an auth code was not exchanged.
#[derive(Debug, PartialEq, Eq)]
pub enum Exchange {
    /// The user it signs in, and how they authenticated (for the `amr` claim).
    Ok(Uuid, String),
    NotFound,
    Expired,
    WrongVerifier,
}

/// Uses up `auth_code` if `verifier` is the one its challenge was made from, within
/// `lifetime_seconds` of the code's issue. A wrong verifier leaves the code usable (as
/// GoTrue does); the row lock makes two exchanges of one code answer once.
pub async fn exchange_code(
    client: &mut Client,
    auth_code: &str,
    verifier: &str,
    lifetime_seconds: f64,
) -> Result<Exchange, AuthError> {
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "select id, user_id, code_challenge_method, code_challenge, authentication_method,
                    coalesce(auth_code_issued_at, created_at) + make_interval(secs => $2) < now()
               from auth.flow_state
              where auth_code = $1 and user_id is not null
              for update",
            &[&auth_code, &lifetime_seconds],
        )
        .await?
    else {
        return Ok(Exchange::NotFound);
    };
    let (id, user, method, challenge, authenticated_by, expired): (
        Uuid,
        Uuid,
        Option<String>,
        Option<String>,
        String,
        bool,
    ) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    if expired {
        return Ok(Exchange::Expired);
    }
    if !pkce_matches(
        method.as_deref().unwrap_or_default(),
        challenge.as_deref().unwrap_or_default(),
        verifier,
    ) {
        return Ok(Exchange::WrongVerifier);
    }
    tx.execute("delete from auth.flow_state where id = $1", &[&id])
        .await?;
    tx.commit().await?;
    Ok(Exchange::Ok(user, authenticated_by))
}

/// RFC 7636: `s256` compares base64url(SHA-256(verifier)), `plain` the verifier itself.
fn pkce_matches(method: &str, challenge: &str, verifier: &str) -> bool {
    use base64::Engine as _;
    use subtle::ConstantTimeEq as _;
    let expected = match method.to_ascii_lowercase().as_str() {
        "s256" => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes())),
        "plain" => verifier.to_string(),
        _ => return false,
    };
    bool::from(expected.as_bytes().ct_eq(challenge.as_bytes()))
}

/// A second factor of a user.
#[derive(Debug)]
pub struct Factor {
    pub id: Uuid,
    pub verified: bool,
    pub factor_type: String,
    /// The TOTP secret, base32.
    pub secret: Option<String>,
}

/// What enrolling one more factor would meet: how many factors the user has, how many
/// are verified, and whether `friendly_name` is taken. Unverified factors older than
/// `expiry_seconds` are dropped first, as GoTrue drops them.
pub async fn factor_counts(
    client: &Client,
    user: Uuid,
    friendly_name: &str,
    expiry_seconds: f64,
) -> Result<(i64, i64, bool), AuthError> {
    client
        .execute(
            "delete from auth.mfa_factors where user_id = $1 and status = 'unverified'
                and created_at < now() - make_interval(secs => $2)",
            &[&user, &expiry_seconds],
        )
        .await?;
    let row = client
        .query_one(
            "select count(*), count(*) filter (where status = 'verified'),
                    coalesce(bool_or(coalesce(friendly_name, '') = $2), false)
               from auth.mfa_factors where user_id = $1",
            &[&user, &friendly_name],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// A new, unverified TOTP factor with `secret`.
pub async fn create_totp_factor(
    client: &Client,
    user: Uuid,
    friendly_name: &str,
    secret: &str,
) -> Result<Uuid, AuthError> {
    let id = Uuid::new_v4();
    client
        .execute(
            "insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status,
                                           created_at, updated_at, secret)
             values ($1, $2, $3, 'totp', 'unverified', now(), now(), $4)",
            &[&id, &user, &friendly_name, &secret],
        )
        .await?;
    Ok(id)
}

/// The factor `id` if it is `user`'s.
pub async fn factor(client: &Client, user: Uuid, id: Uuid) -> Result<Option<Factor>, AuthError> {
    let row = client
        .query_opt(
            "select status = 'verified', factor_type, secret from auth.mfa_factors
              where id = $1 and user_id = $2",
            &[&id, &user],
        )
        .await?;
    Ok(row.map(|row| Factor {
        id,
        verified: row.get(0),
        factor_type: row.get(1),
        secret: row.get(2),
    }))
}

/// A challenge of `factor` made from `ip`; answers its id and Unix creation time.
pub async fn create_challenge(
    client: &Client,
    factor: Uuid,
    ip: std::net::IpAddr,
) -> Result<(Uuid, i64), AuthError> {
    let id = Uuid::new_v4();
    let row = client
        .query_one(
            "with f as (update auth.mfa_factors set last_challenged_at = now(), updated_at = now()
                         where id = $2)
             insert into auth.mfa_challenges (id, factor_id, created_at, ip_address)
             values ($1, $2, now(), $3) returning extract(epoch from created_at)::bigint",
            &[&id, &factor, &ip],
        )
        .await?;
    Ok((id, row.get(0)))
}

/// Why a challenge cannot be answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Open,
    NotFound,
    /// Answered already, or asked from another address.
    Spent,
    /// Older than its lifetime; it is deleted.
    Expired,
}

/// The state of challenge `id` of `factor`, for an answer from `ip`.
pub async fn challenge(
    client: &Client,
    factor: Uuid,
    id: Uuid,
    ip: std::net::IpAddr,
    lifetime_seconds: f64,
) -> Result<Challenge, AuthError> {
    let Some(row) = client
        .query_opt(
            "select verified_at is not null or ip_address <> $3,
                    created_at + make_interval(secs => $4) < now()
               from auth.mfa_challenges where id = $1 and factor_id = $2",
            &[&id, &factor, &ip, &lifetime_seconds],
        )
        .await?
    else {
        return Ok(Challenge::NotFound);
    };
    let (spent, expired): (bool, bool) = (row.get(0), row.get(1));
    if spent {
        return Ok(Challenge::Spent);
    }
    if expired {
        client
            .execute("delete from auth.mfa_challenges where id = $1", &[&id])
            .await?;
        return Ok(Challenge::Expired);
    }
    Ok(Challenge::Open)
}

/// A right answer to `challenge`: the factor is verified, `session` becomes aal2 with a
/// `totp` entry in its `amr` and a new refresh token (the aal1 ones can no longer
/// refresh it), the user's other aal1 sessions end and their other unverified TOTP
/// factors go, all as GoTrue's `verifyTOTPFactor` does, in one transaction.
pub async fn verify_factor(
    client: &mut Client,
    user: Uuid,
    session: Uuid,
    factor: Uuid,
    challenge: Uuid,
) -> Result<Issued, AuthError> {
    let token = random_token(32);
    let tx = client.transaction().await?;
    tx.execute(
        "update auth.mfa_challenges set verified_at = now() where id = $1",
        &[&challenge],
    )
    .await?;
    tx.execute(
        "update auth.mfa_factors set status = 'verified', updated_at = now() where id = $1",
        &[&factor],
    )
    .await?;
    tx.execute(
        "insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method)
         values ($1, now(), now(), 'totp')
         on conflict (session_id, authentication_method) do update set updated_at = now()",
        &[&session],
    )
    .await?;
    tx.execute(
        "update auth.sessions set aal = 'aal2', factor_id = $2, updated_at = now() where id = $1",
        &[&session, &factor],
    )
    .await?;
    // The aal1 tokens go rather than being revoked: a revoked parent would still be
    // answered with its child, and so could refresh into this aal2 session.
    tx.execute(
        "with old as (delete from auth.refresh_tokens where session_id = $1)
         insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
         values ('00000000-0000-0000-0000-000000000000', $2, $3::uuid::text, false, now(), now(), $1)",
        &[&session, &token, &user],
    )
    .await?;
    tx.execute(
        "delete from auth.sessions where user_id = $1 and coalesce(aal, 'aal1') < 'aal2'",
        &[&user],
    )
    .await?;
    tx.execute(
        "delete from auth.mfa_factors where user_id = $1 and status = 'unverified' and factor_type = 'totp'",
        &[&user],
    )
    .await?;
    let issued = issued(&tx, session, token).await?;
    tx.commit().await?;
    Ok(issued)
}

/// Removes `factor`; sessions it made aal2 go back to aal1 (their `totp` entry gone).
pub async fn unenroll_factor(client: &mut Client, factor: Uuid) -> Result<(), AuthError> {
    let tx = client.transaction().await?;
    tx.execute(
        "delete from auth.mfa_amr_claims c using auth.sessions s
          where c.session_id = s.id and s.factor_id = $1 and c.authentication_method = 'totp'",
        &[&factor],
    )
    .await?;
    tx.execute(
        "update auth.sessions set aal = 'aal1', factor_id = null, updated_at = now()
          where factor_id = $1",
        &[&factor],
    )
    .await?;
    tx.execute("delete from auth.mfa_factors where id = $1", &[&factor])
        .await?;
    tx.commit().await?;
    Ok(())
}

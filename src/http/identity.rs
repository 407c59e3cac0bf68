//! Identity over REST: registration, sign-in and out, profile, password
//! change and reset, and the admin's user management.

use super::page::ReadQuery;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use annals_domain::user::values::{check_password, NAME_MAX, TEXT_MAX};
use annals_domain::user::{
    Email, PasswordChangeReason, Phone, Profile, Role, User, UserCommand, Username,
};
use annals_domain::FieldError;
use annals_projections::users::{
    self, UserFilter, UserKey, UserRow, UserSummaryRow, UsersProjector, NAME as USERS,
};
use annals_projections::Projector;
use cqrs_es::Aggregate as _;

use super::command::{accepted, created, reply, CommandHeaderParams};
use super::{
    ApiError, ApiQuery, AppState, Caller, ClientAddress, CommandAccepted, CommandCall,
    CommandHeaders, CommandProblems, CommonProblems, JsonBody,
};
use crate::app::{AppError, CommandContext, Done, Executed};
use crate::auth::mail::Mailer;
use crate::auth::rate_limit::RateLimiter;
use crate::auth::{secrets, user_id, AuthStore};
use crate::platform::{Module, Platform, Services};

pub struct IdentityModule;

/// Limits for sign-in and reset attempts.
pub struct Limits {
    pub login_by_user: RateLimiter,
    pub login_by_address: RateLimiter,
    pub reset_by_user: RateLimiter,
    pub reset_by_address: RateLimiter,
}

impl Module for IdentityModule {
    fn name(&self) -> &'static str {
        "identity"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(register))
            .routes(routes!(login))
            .routes(routes!(logout))
            .routes(routes!(request_password_reset))
            .routes(routes!(confirm_password_reset))
            .routes(routes!(get_me, update_me))
            .routes(routes!(change_password))
            .routes(routes!(list_users))
            .routes(routes!(get_user))
            .routes(routes!(grant_role))
            .routes(routes!(revoke_role))
            .routes(routes!(deactivate))
            .routes(routes!(reactivate))
            .routes(routes!(erase_personal_data))
    }

    fn install(&self, platform: &Arc<Platform>, services: &mut Services) {
        let settings = &platform.settings;
        let mailer = Mailer::new(
            settings.smtp_url.as_deref(),
            &settings.mail_from,
            &settings.data_dir,
        )
        .expect("mail settings are checked at start-up");
        services.insert(mailer);
        let minute = Duration::from_secs(60);
        services.insert(Limits {
            login_by_user: RateLimiter::new(10, 15 * minute),
            login_by_address: RateLimiter::new(50, 15 * minute),
            reset_by_user: RateLimiter::new(5, 60 * minute),
            reset_by_address: RateLimiter::new(20, 60 * minute),
        });
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![Arc::new(UsersProjector)]
    }
}

// ---------------------------------------------------------------- schemas

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"username": "ada", "password": "correct horse battery", "full_name": "Ada Lovelace", "email": "ada@example.com", "phone": "+441234567890"})))]
pub struct RegisterRequest {
    /// Lowercase letters, digits, `.`, `_`, `-`; starts with a letter or digit.
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$"
    )]
    pub username: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(min_length = 1, max_length = 200)]
    pub full_name: String,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// An optional `+` and 10 to 15 digits.
    #[schema(pattern = r"^\+?[0-9]{10,15}$")]
    pub phone: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"username": "ada", "password": "correct horse battery"})))]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 32)]
    pub username: String,
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"access_token": "ann_Zm9vYmFy...", "token_type": "Bearer", "expires_in": 43200})))]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// The editable profile (PUT replaces it whole).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"full_name": "Ada Lovelace", "email": "ada@example.com", "phone": "+441234567890", "company_name": "Analytical Engines", "company_size": 12, "client_type": "business", "description": "Engines and notes", "website": "https://example.com", "social_links": ["https://example.com/ada"]})))]
pub struct ProfileRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub full_name: String,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(pattern = r"^\+?[0-9]{10,15}$")]
    pub phone: Option<String>,
    #[schema(max_length = 200)]
    pub company_name: Option<String>,
    #[schema(minimum = 0, maximum = 10000000)]
    pub company_size: Option<u32>,
    #[schema(max_length = 200)]
    pub client_type: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(max_length = 2000, pattern = r"^https?://\S*$")]
    pub website: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<super::schema::HttpUrl>, max_items = 20)]
    pub social_links: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq)]
pub struct ProfileView {
    pub full_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub company_size: Option<u32>,
    pub client_type: Option<String>,
    pub description: Option<String>,
    pub website: Option<String>,
    pub social_links: Vec<String>,
}

impl From<&Profile> for ProfileView {
    fn from(p: &Profile) -> Self {
        Self {
            full_name: p.full_name.clone(),
            email: p.email.as_ref().map(|e| e.as_str().to_string()),
            phone: p.phone.as_ref().map(|e| e.as_str().to_string()),
            company_name: p.company_name.clone(),
            company_size: p.company_size,
            client_type: p.client_type.clone(),
            description: p.description.clone(),
            website: p.website.clone(),
            social_links: p.social_links.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<String>,
    pub active: bool,
    pub version: i64,
    pub profile: ProfileView,
    /// Whether a Telegram chat is linked (see `POST /me/telegram-link`).
    pub telegram_linked: bool,
}

fn role_names(roles: Vec<Role>) -> Vec<String> {
    roles.into_iter().map(|r| r.as_str().to_string()).collect()
}

impl From<UserRow> for MeResponse {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            roles: role_names(row.roles),
            active: row.active,
            version: row.version,
            profile: ProfileView::from(&row.profile),
            telegram_linked: row.telegram_chat_id.is_some(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProfileUpdated {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    pub profile: ProfileView,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"current_password": "correct horse battery", "new_password": "staple battery horse"})))]
pub struct ChangePasswordRequest {
    #[schema(min_length = 1, max_length = 128)]
    pub current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// Name the account by username or by e-mail (the username wins if both
/// are given; with neither nothing is sent).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"username": "ada"})))]
pub struct ResetRequest {
    #[schema(min_length = 1, max_length = 32)]
    pub username: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"token": "Zm9vYmFyYmF6cXV4cXV1eA", "new_password": "staple battery horse"})))]
pub struct ResetConfirmRequest {
    /// The token from the e-mail.
    #[schema(min_length = 1, max_length = 200)]
    pub token: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"status": "accepted"})))]
pub struct Status {
    pub status: &'static str,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"role": "manager"})))]
pub struct GrantRoleRequest {
    pub role: RoleName,
}

/// A role name.
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Admin,
    Manager,
    Operator,
    Marketer,
    Master,
    Client,
    Dealer,
    Auditor,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Role {
        match r {
            RoleName::Admin => Role::Admin,
            RoleName::Manager => Role::Manager,
            RoleName::Operator => Role::Operator,
            RoleName::Marketer => Role::Marketer,
            RoleName::Master => Role::Master,
            RoleName::Client => Role::Client,
            RoleName::Dealer => Role::Dealer,
            RoleName::Auditor => Role::Auditor,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Usernames starting with this (case-insensitive).
    #[param(max_length = 32)]
    pub username: Option<String>,
    pub role: Option<RoleName>,
    /// At most this many items (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 200)]
    pub cursor: Option<String>,
    /// Wait until the read model has applied the log up to here.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct UserSummary {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub username: String,
    pub full_name: String,
    pub roles: Vec<String>,
    pub active: bool,
}

impl From<UserSummaryRow> for UserSummary {
    fn from(row: UserSummaryRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            full_name: row.full_name,
            roles: role_names(row.roles),
            active: row.active,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------- helpers

fn field<T>(errors: &mut Vec<FieldError>, result: Result<T, FieldError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            errors.push(err);
            None
        }
    }
}

fn bounded(
    errors: &mut Vec<FieldError>,
    name: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if let Some(v) = &value {
        if v.chars().count() > max {
            errors.push(FieldError::new(
                name,
                format!("must be at most {max} characters"),
            ));
        }
    }
    value
}

fn check_url(errors: &mut Vec<FieldError>, name: &str, value: &str) {
    if !(value.starts_with("https://") || value.starts_with("http://"))
        || value.contains(char::is_whitespace)
    {
        errors.push(FieldError::new(name, "must be an http(s):// URL"));
    }
}

fn profile_from(request: ProfileRequest) -> Result<Profile, ApiError> {
    let mut errors = Vec::new();
    let full_name = request.full_name.trim().to_string();
    if full_name.is_empty() || full_name.chars().count() > NAME_MAX {
        errors.push(FieldError::new(
            "full_name",
            format!("must be 1 to {NAME_MAX} characters"),
        ));
    }
    let email = request
        .email
        .filter(|e| !e.trim().is_empty())
        .and_then(|e| field(&mut errors, Email::parse("email", &e)));
    let phone = request
        .phone
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| field(&mut errors, Phone::parse("phone", &p)));
    let company_name = bounded(&mut errors, "company_name", request.company_name, NAME_MAX);
    let client_type = bounded(&mut errors, "client_type", request.client_type, NAME_MAX);
    let description = bounded(&mut errors, "description", request.description, TEXT_MAX);
    let website = bounded(&mut errors, "website", request.website, TEXT_MAX);
    if let Some(site) = &website {
        check_url(&mut errors, "website", site);
    }
    if request.company_size.is_some_and(|s| s > 10_000_000) {
        errors.push(FieldError::new("company_size", "must be at most 10000000"));
    }
    if request.social_links.len() > 20 {
        errors.push(FieldError::new("social_links", "at most 20 links"));
    }
    for (i, link) in request.social_links.iter().enumerate() {
        check_url(&mut errors, &format!("social_links[{i}]"), link);
        if link.len() > TEXT_MAX {
            errors.push(FieldError::new(
                format!("social_links[{i}]"),
                format!("must be at most {TEXT_MAX} characters"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(Profile {
        full_name,
        email,
        phone,
        company_name,
        company_size: request.company_size,
        client_type,
        description,
        website,
        social_links: request.social_links,
    })
}

pub(crate) async fn user_command(
    app: &AppState,
    ctx: &CommandContext,
    id: Uuid,
    command: UserCommand,
) -> Result<Done<Executed<User>>, AppError> {
    let done = app
        .platform
        .command_bus::<User>()
        .execute(ctx, &id.to_string(), command)
        .await?;
    users_show(app, done).await
}

/// Sign-in and permission checks read the users read model: a change to a
/// user is answered only once it shows there.
async fn users_show<T>(app: &AppState, done: Done<T>) -> Result<Done<T>, AppError> {
    app.platform
        .wait_for(USERS, Some(done.position))
        .await
        .map_err(|e| AppError::unavailable(e.detail))?;
    Ok(done)
}

fn username_of(done: &Done<Executed<User>>) -> String {
    done.value
        .state
        .username
        .as_ref()
        .map(|u| u.as_str().to_string())
        .unwrap_or_default()
}

fn too_many(retry_after: u64) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many attempts",
        format!("too many attempts; retry in {retry_after} s"),
    );
    err.retry_after = Some(retry_after);
    err
}

fn invalid_credentials() -> ApiError {
    super::access::unauthorized("invalid username or password")
}

fn parse_user_id(raw: &str) -> Result<Uuid, ApiError> {
    super::extract::path_uuid("id", raw)
}

// ---------------------------------------------------------------- handlers

/// Sign up as a client.
#[utoipa::path(post, path = "/auth/register", tag = "identity",
    request_body = RegisterRequest,
    params(super::command::IdempotencyParams),
    responses(
        (status = 201, description = "Registered; sign in next", body = CommandAccepted,
            headers(("Location" = String, description = "The new user: /api/v1/users/{id}"))),
        CommonProblems, CommandProblems,
    ))]
async fn register(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/auth/register", body.digest);
    let request = body.value;
    {
        let mut errors = Vec::new();
        let username = field(&mut errors, Username::parse(&request.username));
        field(&mut errors, check_password("password", &request.password));
        let profile = profile_from(ProfileRequest {
            full_name: request.full_name,
            email: Some(request.email.clone()),
            phone: Some(request.phone.clone()),
            company_name: None,
            company_size: None,
            client_type: None,
            description: None,
            website: None,
            social_links: Vec::new(),
        });
        if request.email.trim().is_empty() {
            errors.push(FieldError::new("email", "is required"));
        }
        if request.phone.trim().is_empty() {
            errors.push(FieldError::new("phone", "is required"));
        }
        let profile = match profile {
            Ok(p) => Some(p),
            Err(err) => {
                errors.extend(
                    err.errors
                        .into_iter()
                        .map(|e| FieldError::new(e.field, e.message)),
                );
                None
            }
        };
        let (Some(username), Some(profile), true) = (username, profile, errors.is_empty()) else {
            return Err(ApiError::invalid(errors));
        };
        let id = user_id(username.as_str());
        let hash = secrets::hash_password(request.password).await?;
        let command = UserCommand::Register {
            username: username.clone(),
            profile,
            roles: BTreeSet::from([Role::Client]),
        };
        let done = user_command(&app, &call.context(), id, command).await;
        if done.is_ok() {
            // Also on a replay: the retry carries the same password, and it
            // completes a first attempt that stopped before this line.
            AuthStore::set_password(&app.platform.db.any, id, username.as_str(), &hash).await?;
        }
        Ok(created("/users", done, CommandAccepted::of))
    }
}

/// Sign in: exchange username and password for a bearer token.
#[utoipa::path(post, path = "/auth/login", tag = "identity",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        super::error::Unauthorized,
        (status = 429, description = "Too many attempts; see Retry-After", body = super::Problem, content_type = "application/problem+json"),
        CommonProblems,
    ))]
async fn login(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    body: JsonBody<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let limits = app.service::<Limits>();
    let LoginRequest { username, password } = body.value;
    let username = username.trim().to_ascii_lowercase();
    limits.login_by_address.check(&address).map_err(too_many)?;
    limits.login_by_user.check(&username).map_err(too_many)?;
    let pool = &app.platform.db.any;
    let stored = AuthStore::password_hash(pool, &username).await?;
    let (id, hash) = match stored {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    if !secrets::verify_password(password, hash).await {
        return Err(invalid_credentials());
    }
    let id = id.expect("verified");
    // The user may have been created or changed a moment ago (CLI): let the
    // read model reach the user's last event (not the log head, which a
    // catching-up read model may be far from) before looking at it.
    let last = app
        .platform
        .log
        .last_position_of(User::TYPE, &id.to_string())
        .await?;
    app.platform.wait_for(USERS, Some(last)).await?;
    if users::active(pool, id).await? != Some(true) {
        return Err(invalid_credentials());
    }
    let ttl = app.platform.settings.token_ttl.as_secs() as i64;
    let token = AuthStore::issue_token(pool, id, ttl).await?;
    Ok(Json(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl,
    }))
}

/// Sign out: revokes the token used for this request.
#[utoipa::path(post, path = "/auth/logout", tag = "identity", security(("bearer" = [])),
    responses(
        (status = 204, description = "The token is revoked"),
        super::error::Unauthorized,
        CommonProblems,
    ))]
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim().to_string())
        .ok_or_else(|| super::access::unauthorized("no token"))?;
    AuthStore::revoke_token(&app.platform.db.any, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn load_me(app: &AppState, id: Uuid) -> Result<MeResponse, ApiError> {
    Ok(users::user(&app.platform.db.any, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?
        .into())
}

/// Your own profile and roles.
#[utoipa::path(get, path = "/me", tag = "identity", security(("bearer" = [])), params(ReadQuery),
    responses(
        (status = 200, description = "Your profile", body = MeResponse),
        super::error::ReadProblems,
        super::error::Unauthorized,
        CommonProblems,
    ))]
async fn get_me(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<MeResponse>, ApiError> {
    let me = caller.principal()?;
    app.platform.wait_for(USERS, query.min_position).await?;
    Ok(Json(load_me(&app, me.user_id).await?))
}

/// Replace your profile.
#[utoipa::path(put, path = "/me", tag = "identity", security(("bearer" = [])),
    request_body = ProfileRequest,
    params(CommandHeaderParams),
    responses(
        (status = 200, description = "Updated", body = ProfileUpdated),
        super::error::Unauthorized,
        CommonProblems, CommandProblems,
    ))]
async fn update_me(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ProfileRequest>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.user_id;
    let call = CommandCall::new(caller, headers, "PUT", "/me", body.digest);
    let profile = profile_from(body.value)?;
    let done = user_command(
        &app,
        &call.context(),
        me,
        UserCommand::UpdateProfile { profile },
    )
    .await;
    Ok(reply(StatusCode::OK, done, |done| ProfileUpdated {
        accepted: CommandAccepted::of(done),
        profile: ProfileView::from(&done.value.state.profile),
    }))
}

/// Change your password (signs you out everywhere).
#[utoipa::path(post, path = "/me/password", tag = "identity", security(("bearer" = [])),
    request_body = ChangePasswordRequest, params(CommandHeaderParams),
    responses(
        (status = 200, description = "Changed; every token of yours is revoked", body = CommandAccepted),
        super::error::Forbidden,
        super::error::Unauthorized,
        CommonProblems, CommandProblems,
    ))]
async fn change_password(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ChangePasswordRequest>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.user_id;
    let call = CommandCall::new(caller, headers, "POST", "/me/password", body.digest);
    let ctx = call.context();
    // A retry after the change would fail the current-password check below:
    // answer it from its key first.
    if let Some(earlier) = app
        .platform
        .commands
        .recorded::<Executed<User>>(&ctx)
        .await?
    {
        return Ok(accepted(StatusCode::OK, earlier));
    }
    let request = body.value;
    check_password("new_password", &request.new_password)
        .map_err(|e| ApiError::invalid(vec![e]))?;
    let pool = &app.platform.db.any;
    let current = AuthStore::password_hash_of(pool, me).await?;
    if !secrets::verify_password(request.current_password, current).await {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong-password",
            "Forbidden",
            "current_password is not your current password",
        )
        .naming("current_password", "is not your current password"));
    }
    let hash = secrets::hash_password(request.new_password).await?;
    let reason = PasswordChangeReason::Changed;
    let done = user_command(&app, &ctx, me, UserCommand::RecordPasswordChange { reason }).await;
    if let Ok(done) = &done {
        AuthStore::set_password(pool, me, &username_of(done), &hash).await?;
        AuthStore::revoke_all(pool, me).await?;
    }
    Ok(accepted(StatusCode::OK, done))
}

/// Ask for a password reset e-mail. The answer is the same whether or not
/// the account exists.
#[utoipa::path(post, path = "/auth/password-reset", tag = "identity",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "If the account exists and has an e-mail address, a reset link is on its way", body = Status),
        (status = 429, description = "Too many attempts; see Retry-After", body = super::Problem, content_type = "application/problem+json"),
        CommonProblems,
    ))]
async fn request_password_reset(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    body: JsonBody<ResetRequest>,
) -> Result<(StatusCode, Json<Status>), ApiError> {
    let ResetRequest { username, email } = body.value;
    if let Some(e) = &email {
        Email::parse("email", e).map_err(|f| ApiError::invalid(vec![f]))?;
    }
    let accepted = (StatusCode::ACCEPTED, Json(Status { status: "accepted" }));
    let (by, key) = match (username, email) {
        (Some(u), _) if u.trim().is_empty() || u.chars().count() > 32 => {
            return Err(ApiError::bad_parameter(
                "username",
                "must be 1 to 32 characters",
            ))
        }
        (Some(u), _) => (UserKey::Username, u.trim().to_ascii_lowercase()),
        (None, Some(e)) => {
            let email = Email::parse("email", &e).map_err(|f| ApiError::invalid(vec![f]))?;
            (UserKey::Email, email.as_str().to_string())
        }
        // Nothing to look up: the same answer as for an unknown account.
        (None, None) => return Ok(accepted),
    };
    let limits = app.service::<Limits>();
    limits.reset_by_address.check(&address).map_err(too_many)?;
    limits.reset_by_user.check(&key).map_err(too_many)?;
    let pool = &app.platform.db.any;
    if let Some(found) = users::active_contact(pool, by, &key).await? {
        let id = found.id;
        if let Some(email) = found.email {
            let settings = &app.platform.settings;
            let ttl = settings.reset_ttl.as_secs() as i64;
            let token = AuthStore::create_reset(pool, id, ttl).await?;
            let body = format!(
                "Someone asked to reset the password of your Annals account.\n\n\
                 Reset token: {token}\n\
                 Or open: {}/reset-password?token={token}\n\n\
                 The token works once, for {} minutes. If it was not you, ignore this message.\n",
                settings.public_url,
                ttl / 60
            );
            let mailer = app.service::<Mailer>();
            // Sent in the background: the answer must not reveal by its
            // timing whether the account exists.
            tokio::spawn(async move {
                if let Err(err) = mailer
                    .send(&email, "Reset your Annals password", body)
                    .await
                {
                    tracing::error!(error = %format!("{err:#}"), "password reset mail not sent");
                }
            });
        }
    }
    Ok(accepted)
}

/// Set a new password with a reset token (signs the user out everywhere).
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "identity",
    request_body = ResetConfirmRequest,
    responses(
        (status = 200, description = "The password is set", body = Status),
        CommonProblems, CommandProblems,
    ))]
async fn confirm_password_reset(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ResetConfirmRequest>,
) -> Result<Json<Status>, ApiError> {
    let request = body.value;
    check_password("new_password", &request.new_password)
        .map_err(|e| ApiError::invalid(vec![e]))?;
    let pool = &app.platform.db.any;
    let id = AuthStore::consume_reset(pool, request.token.trim())
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "reset-token-invalid",
                "the reset token is unknown, used or expired",
            )
            .naming("token", "is unknown, used or expired")
        })?;
    let hash = secrets::hash_password(request.new_password).await?;
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        "/auth/password-reset/confirm",
        body.digest,
    );
    let reason = PasswordChangeReason::Reset;
    let done = user_command(
        &app,
        &call.context(),
        id,
        UserCommand::RecordPasswordChange { reason },
    )
    .await?;
    AuthStore::set_password(pool, id, &username_of(&done), &hash).await?;
    AuthStore::revoke_all(pool, id).await?;
    Ok(Json(Status {
        status: "password_set",
    }))
}

/// One user (admin); where a registration's `Location` points.
#[utoipa::path(get, path = "/users/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user"), ReadPosition),
    responses(
        (status = 200, description = "The user", body = UserSummary),
        super::error::ReadProblems,
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems,
    ))]
async fn get_user(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadPosition>,
) -> Result<Json<UserSummary>, ApiError> {
    let id = parse_user_id(&id)?;
    app.platform.wait_for(USERS, query.min_position).await?;
    let row = annals_projections::users::user(&app.platform.db.any, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    Ok(Json(UserSummary {
        id: row.id,
        username: row.username,
        full_name: row.profile.full_name,
        roles: role_names(row.roles),
        active: row.active,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadPosition {
    /// Wait until the read model has applied the log up to here.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// List users (admin).
#[utoipa::path(get, path = "/users", tag = "identity", security(("bearer" = [])), params(UserListQuery),
    responses(
        (status = 200, description = "A page of users, by username", body = UserPage),
        super::error::ReadProblems,
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems,
    ))]
async fn list_users(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<UserListQuery>,
) -> Result<Json<UserPage>, ApiError> {
    app.platform.wait_for(USERS, query.min_position).await?;
    let limit = super::page::window(query.limit, query.cursor.as_deref(), 200)?;
    // The cursor is the last username of the previous page; one that does
    // not decode is taken as it is (it only moves the start of the page).
    let after = match &query.cursor {
        None => String::new(),
        Some(cursor) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_else(|| cursor.clone()),
    };
    if query
        .username
        .as_ref()
        .is_some_and(|u| u.chars().count() > 32)
    {
        return Err(ApiError::bad_parameter(
            "username",
            "must be at most 32 characters",
        ));
    }
    let prefix = query
        .username
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let filter = UserFilter {
        after,
        username_prefix: prefix,
        role: query.role.map(Role::from),
        limit: i64::from(limit) + 1,
    };
    let mut items: Vec<UserSummary> = users::users(&app.platform.db.any, &filter)
        .await?
        .into_iter()
        .map(UserSummary::from)
        .collect();
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|u| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&u.username))
    } else {
        None
    };
    Ok(Json(UserPage { items, next_cursor }))
}

async fn admin_command(
    app: AppState,
    caller: Caller,
    headers: CommandHeaders,
    route: String,
    digest: String,
    id: &str,
    command: UserCommand,
) -> Response {
    let id = match parse_user_id(id) {
        Ok(id) => id,
        Err(err) => return err.into_response(),
    };
    let revokes = matches!(command, UserCommand::Deactivate);
    let call = CommandCall::new(caller, headers, "POST", &route, digest);
    let done = user_command(&app, &call.context(), id, command).await;
    if revokes && done.is_ok() {
        if let Err(err) = AuthStore::revoke_all(&app.platform.db.any, id).await {
            return ApiError::from(err).into_response();
        }
    }
    accepted(StatusCode::OK, done)
}

/// Grant a role (admin).
#[utoipa::path(post, path = "/users/{id}/roles", tag = "identity", security(("bearer" = [])),
    request_body = GrantRoleRequest,
    params(("id" = uuid::Uuid, Path, description = "The user"), CommandHeaderParams),
    responses(
        (status = 200, description = "Granted (or already held)", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems,
    ))]
async fn grant_role(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<GrantRoleRequest>,
) -> Response {
    let command = UserCommand::GrantRole {
        role: body.value.role.into(),
    };
    admin_command(
        app,
        caller,
        headers,
        format!("/users/{id}/roles"),
        body.digest,
        &id,
        command,
    )
    .await
}

/// Revoke a role (admin).
#[utoipa::path(delete, path = "/users/{id}/roles/{role}", tag = "identity", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user"), ("role" = RoleName, Path), CommandHeaderParams),
    responses(
        (status = 200, description = "Revoked (or not held)", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems,
    ))]
async fn revoke_role(
    State(app): State<AppState>,
    Path((id, role)): Path<(String, String)>,
    caller: Caller,
    headers: CommandHeaders,
) -> Response {
    let Some(role) = Role::parse(&role) else {
        let mut e = ApiError::bad_request(format!("path parameter role: '{role}' is not a role"));
        e.errors = vec![super::error::ProblemField {
            field: "role".into(),
            message: "is not a role".into(),
        }];
        return e.into_response();
    };
    let route = format!("/users/{id}/roles/{role}");
    admin_command(
        app,
        caller,
        headers,
        route,
        String::new(),
        &id,
        UserCommand::RevokeRole { role },
    )
    .await
}

/// Deactivate a user (admin): they are signed out and cannot sign in.
#[utoipa::path(post, path = "/users/{id}/deactivate", tag = "identity", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user"), CommandHeaderParams),
    responses(
        (status = 200, description = "Deactivated (or already)", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems,
    ))]
async fn deactivate(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Response {
    let route = format!("/users/{id}/deactivate");
    admin_command(
        app,
        caller,
        headers,
        route,
        String::new(),
        &id,
        UserCommand::Deactivate,
    )
    .await
}

/// Erase a user's personal data (admin): crypto-shredding. The profile
/// shows `[erased]` from now on, in every answer, read model, rebuild and
/// audit history, and the hash chain still verifies; the account stays
/// (deactivate it too if it should not sign in). See README "Privacy".
#[utoipa::path(post, path = "/users/{id}/erase", tag = "identity", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user"), CommandHeaderParams),
    responses(
        (status = 200, description = "Erased (a retry erases again)", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems,
    ))]
async fn erase_personal_data(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Response {
    let id = match parse_user_id(&id) {
        Ok(id) => id,
        Err(err) => return err.into_response(),
    };
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/users/{id}/erase"),
        String::new(),
    );
    let person = crate::app::privacy::Person::User(id);
    let done = match crate::app::privacy::erase(&app.platform, &call.context(), person).await {
        Ok(done) => users_show(&app, done).await,
        Err(err) => Err(err),
    };
    accepted(StatusCode::OK, done)
}

/// Reactivate a user (admin).
#[utoipa::path(post, path = "/users/{id}/reactivate", tag = "identity", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user"), CommandHeaderParams),
    responses(
        (status = 200, description = "Reactivated (or already active)", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems,
    ))]
async fn reactivate(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Response {
    let route = format!("/users/{id}/reactivate");
    admin_command(
        app,
        caller,
        headers,
        route,
        String::new(),
        &id,
        UserCommand::Reactivate,
    )
    .await
}

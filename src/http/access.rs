//! Access to the API: resolves the bearer token to a principal and
//! enforces the permission matrix (`auth::permissions`) on every `/api/v1`
//! route, before any handler runs.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::auth::permissions::{self, Access};

/// Resolves the bearer token and enforces the matrix for every `/api/v1`
/// route: no or bad token where one is needed → 401, a role that may not
/// → 403, a route without a matrix entry → 403.
pub async fn authorize(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return next.run(request).await;
    };
    if !path.starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_string();
    let Some(access) = app.routes.access(&method, &path) else {
        tracing::error!(%method, %path, "route without a permission entry");
        return forbidden("this route has no permission entry").into_response();
    };
    let open = matches!(access, Access::Public | Access::Signed);
    let token = match bearer(&request) {
        Ok(token) => token,
        // A public route does not need the header: it serves anonymously.
        Err(_) if open => None,
        Err(err) => return err.into_response(),
    };
    let principal = match token {
        None => None,
        Some(token) => match app.tokens.principal(&token).await {
            Ok(Some(principal)) => Some(principal),
            // A public route does not need the token: it serves anonymously.
            Ok(None) if open => None,
            Ok(None) => {
                return unauthorized("the token is unknown, expired or revoked").into_response()
            }
            Err(err) => return ApiError::from(err).into_response(),
        },
    };
    let allowed = permissions::allowed(access, principal.as_ref().map(|p| p.roles.as_slice()));
    if !allowed {
        return match (principal.is_some(), access) {
            (false, Access::SignedIn | Access::Roles(_)) => {
                unauthorized("sign in first: Authorization: Bearer <token>")
            }
            _ => forbidden("your roles do not allow this"),
        }
        .into_response();
    }
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}

fn bearer(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not readable"))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(unauthorized("use Authorization: Bearer <token>")),
    }
}

pub fn unauthorized(detail: &str) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail,
    );
    err.www_authenticate = true;
    err
}

pub fn forbidden(detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
}

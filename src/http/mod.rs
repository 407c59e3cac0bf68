//! HTTP: shared state, the router of every module under `/api/v1`, the ops
//! endpoints, OpenAPI and Swagger UI, and the middleware around them.

pub mod access;
pub mod appointments;
pub mod audit;
pub mod command;
pub mod customers;
pub mod dashboards;
pub mod error;
pub mod extract;
pub mod gym;
pub mod history;
pub mod identity;
pub mod marketing;
pub mod notifier;
pub mod openapi;
pub mod ops;
pub mod page;
pub mod projects;
pub mod schema;
pub mod shop;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::OpenApiRouter;

pub use command::{accepted, reply, CommandAccepted, CommandCall};
pub use error::{ApiError, CommandProblems, CommonProblems, Problem};
pub use extract::{ApiQuery, Caller, ClientAddress, CommandHeaders, JsonBody};

use crate::platform::{Module, Platform, Services};

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub platform: Arc<Platform>,
    pub services: Arc<Services>,
    /// Who may call which route.
    pub routes: Arc<crate::auth::RouteTable>,
    /// Resolves bearer tokens, many per statement under load.
    pub tokens: crate::auth::TokenLookup,
}

impl AppState {
    pub fn service<T: Send + Sync + 'static>(&self) -> Arc<T> {
        self.services.get::<T>()
    }
}

/// Largest request body accepted.
const BODY_LIMIT: usize = 1024 * 1024;
/// Longest a request may take before it is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every route with its documentation, before state is attached.
pub fn api_router(modules: &[Box<dyn Module>]) -> OpenApiRouter<AppState> {
    let mut api = OpenApiRouter::new();
    for module in modules {
        api = api.merge(module.routes());
    }
    OpenApiRouter::with_openapi(openapi::base())
        .merge(ops::routes())
        .nest("/api/v1", api)
}

/// The OpenAPI document of the whole API.
pub fn openapi_document(modules: &[Box<dyn Module>]) -> utoipa::openapi::OpenApi {
    api_router(modules).into_openapi()
}

/// The complete application router.
pub fn app(modules: &[Box<dyn Module>], state: AppState) -> Router {
    let (router, api) = api_router(modules).split_for_parts();
    let doc = Arc::new(api);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .config(utoipa_swagger_ui::Config::from("/openapi.json")),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(deadline))
        .layer(axum::middleware::from_fn(observe))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not take that method",
    )
}

/// A request that takes too long is answered 503. A command is dropped
/// with it: its transaction rolls back, unless its COMMIT was already on
/// the way, so its outcome is unknown — and a retry with the same
/// `Idempotency-Key` finds out, because the key commits with the events.
async fn deadline(request: Request, next: Next) -> Response {
    let reads = request.method() == axum::http::Method::GET;
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) if reads => ApiError::unavailable("the request took too long").into_response(),
        Err(_) => {
            let mut err = ApiError::unavailable(
                "the request took too long: the command may or may not have taken effect; \
                 retry with the same Idempotency-Key to find out",
            );
            err.slug = "outcome-unknown".into();
            err.into_response()
        }
    }
}

/// Logs each request in its own span and records its latency.
async fn observe(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!("request", %method, path = %request.uri().path());
    let started = Instant::now();
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                ms = elapsed.as_millis() as u64,
                "request failed"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                ms = elapsed.as_millis() as u64,
                "request"
            );
        }
    });
    metrics::histogram!(
        "annals_http_request_duration_seconds",
        "method" => method.to_string(),
        "route" => route,
        "status" => status.as_u16().to_string(),
    )
    .record(elapsed.as_secs_f64());
    response
}

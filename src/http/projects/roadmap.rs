//! The products roadmap: what the business plans, works on, or offers
//! (public), interest registered by clients, and the demand staff see.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use annals_domain::projects::portal::RoadmapCommand;
use annals_projections::projects::queries::{self, RoadmapRow};
use annals_projections::projects::PROJECTS;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::path_uuid;
use super::super::page::{page, Page, ReadQuery};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::projects as workflows;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Online booking widget", "description": "Book from your own site"})))]
pub struct RoadmapProductRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
}

/// Put a product on the roadmap (as planned).
#[utoipa::path(post, path = "/roadmap", tag = "projects", security(("bearer" = [])),
    request_body = RoadmapProductRequest, params(IdempotencyParams),
    responses((status = 201, description = "Planned", body = CommandAccepted,
            headers(("Location" = String, description = "The product: /api/v1/roadmap/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn plan_product(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<RoadmapProductRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/roadmap", body.digest);
    let r = body.value;
    if r.description.chars().count() > 5000 {
        return Err(ApiError::invalid(vec![annals_domain::FieldError::new(
            "description",
            "at most 5000 characters",
        )]));
    }
    let done =
        workflows::plan_roadmap_product(&app.platform, &call.context(), r.name, r.description)
            .await;
    Ok(created("/roadmap", done, CommandAccepted::of))
}

#[derive(Serialize, ToSchema, Debug)]
pub struct RoadmapProductView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// `planned`, `in_work` or `available`.
    pub state: String,
    pub version: i64,
}

impl RoadmapProductView {
    fn of(row: &RoadmapRow) -> Option<Self> {
        Some(Self {
            id: row.id,
            name: row.state.name.clone()?,
            description: row.state.description.clone(),
            state: row.state.state?.as_str().into(),
            version: row.version,
        })
    }
}

/// The roadmap: planned, then in work, then available; by name.
#[utoipa::path(get, path = "/roadmap", tag = "projects",
    params(super::super::page::ListQuery),
    responses((status = 200, description = "A page of products", body = Page<RoadmapProductView>),
        CommonProblems, ReadProblems))]
pub(super) async fn list_roadmap(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<super::super::page::ListQuery>,
) -> Result<Json<Page<RoadmapProductView>>, ApiError> {
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let items: Vec<RoadmapProductView> = queries::roadmap(&app.platform.db.any)
        .await?
        .iter()
        .filter_map(RoadmapProductView::of)
        .collect();
    Ok(Json(page(
        items,
        |p| {
            let rank = match p.state.as_str() {
                "planned" => 0,
                "in_work" => 1,
                _ => 2,
            };
            format!("{rank}{}\u{0}{}", p.name, p.id)
        },
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One product of the roadmap.
#[utoipa::path(get, path = "/roadmap/{id}", tag = "projects",
    params(("id" = Uuid, Path, description = "The product"), ReadQuery),
    responses((status = 200, description = "The product", body = RoadmapProductView),
        NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_roadmap_product(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<RoadmapProductView>, ApiError> {
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    queries::roadmap_product(&app.platform.db.any, id)
        .await?
        .as_ref()
        .and_then(RoadmapProductView::of)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such product"))
}

#[derive(Serialize, ToSchema, Debug)]
pub struct DemandView {
    #[schema(value_type = String, format = Uuid)]
    pub product_id: Uuid,
    pub name: String,
    pub state: String,
    /// How many clients asked to buy it.
    pub interested: u64,
    /// Who, in the order they asked.
    #[schema(value_type = Vec<String>)]
    pub clients: Vec<Uuid>,
}

/// The demand per product: who asked to buy what, most wanted first.
#[utoipa::path(get, path = "/roadmap/demand", tag = "projects", security(("bearer" = [])),
    params(ReadQuery),
    responses((status = 200, description = "The demand", body = Vec<DemandView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn roadmap_demand(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<Vec<DemandView>>, ApiError> {
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let mut demand: Vec<DemandView> = queries::roadmap(&app.platform.db.any)
        .await?
        .into_iter()
        .filter_map(|row| {
            Some(DemandView {
                product_id: row.id,
                name: row.state.name?,
                state: row.state.state?.as_str().into(),
                interested: row.state.interested.len() as u64,
                clients: row.state.interested,
            })
        })
        .collect();
    demand.sort_by(|a, b| b.interested.cmp(&a.interested).then(a.name.cmp(&b.name)));
    Ok(Json(demand))
}

async fn product_command(
    app: &AppState,
    call: CommandCall,
    id: &str,
    command: RoadmapCommand,
) -> Result<Response, ApiError> {
    let id = path_uuid("id", id)?;
    let done = workflows::roadmap_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Work on the product has started.
#[utoipa::path(post, path = "/roadmap/{id}/start-work", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The product"), CommandHeaderParams),
    responses((status = 200, description = "In work", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn start_product_work(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/roadmap/{id}/start-work");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    product_command(&app, call, &id, RoadmapCommand::StartWork).await
}

/// The product is on offer.
#[utoipa::path(post, path = "/roadmap/{id}/make-available", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The product"), CommandHeaderParams),
    responses((status = 200, description = "Available", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn make_product_available(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/roadmap/{id}/make-available");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    product_command(&app, call, &id, RoadmapCommand::MakeAvailable).await
}

/// Ask to buy a product that is not available yet ("request to buy");
/// asking again counts once.
#[utoipa::path(post, path = "/roadmap/{id}/interest", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The product"), CommandHeaderParams),
    responses((status = 200, description = "Registered (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn register_interest(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let client_id = caller.principal()?.user_id;
    let path = format!("/roadmap/{id}/interest");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    product_command(
        &app,
        call,
        &id,
        RoadmapCommand::RegisterInterest { client_id },
    )
    .await
}

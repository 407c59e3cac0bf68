//! Campaign statistics, for every staff role: as of any business date, and
//! as known at any instant.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_projections::marketing::stats::{self, CampaignInfo, StageTimes, Window};
use annals_projections::marketing::{instant, queries, MARKETING};

use super::super::error::{Forbidden, ReadProblems, Unauthorized};
use super::super::{ApiError, ApiQuery, AppState, CommonProblems};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignStatsQuery {
    /// Business dates from (default: the beginning).
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<NaiveDate>,
    /// Business dates up to (default: `as_of`, or today).
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<NaiveDate>,
    /// The figures for business dates up to this day, with every correction
    /// known now applied (default: today).
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
    /// The figures as the system knew them at this instant (default: now):
    /// facts recorded later are left out.
    #[param(value_type = Option<String>, format = DateTime)]
    pub known_at: Option<DateTime<Utc>>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct StageView {
    /// Leads that left the stage.
    pub leads: usize,
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

impl From<StageTimes> for StageView {
    fn from(t: StageTimes) -> Self {
        Self {
            leads: t.leads,
            median_seconds: t.median_seconds,
            p90_seconds: t.p90_seconds,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct FunnelView {
    /// Every lead of the cohort.
    pub new: usize,
    /// Those that reached `in_progress` (or went past it).
    pub in_progress: usize,
    pub converted: usize,
    /// Lost at the end of the window (not reopened since).
    pub lost: usize,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CampaignStatsView {
    #[schema(value_type = String, format = Uuid)]
    pub campaign_id: Uuid,
    pub name: String,
    pub currency: String,
    pub leads_attracted: usize,
    pub leads_converted: usize,
    /// Converted / attracted (null without leads).
    pub conversion_rate: Option<f64>,
    /// Contract amounts in the campaign's currency.
    #[schema(example = "1800.00")]
    pub revenue: String,
    #[schema(example = "450.00")]
    pub spend: String,
    /// Revenue / spend, 2 decimals (null without spend).
    pub revenue_per_spend: Option<String>,
    pub funnel: FunnelView,
    /// Time from creation to leaving `new`.
    pub time_new: StageView,
    /// Time from start to conversion or loss.
    pub time_in_progress: StageView,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CampaignStatsReport {
    #[schema(value_type = Option<String>, format = Date)]
    pub from: Option<NaiveDate>,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub known_at: DateTime<Utc>,
    pub campaigns: Vec<CampaignStatsView>,
}

/// Per campaign: leads attracted (created on a business date in the
/// window), how many of them were converted (a contract signed by the
/// window's end), revenue from those contracts, spend dated in the window,
/// revenue per spend, the funnel, and the time spent in each stage.
#[utoipa::path(get, path = "/stats/campaigns", tag = "marketing", security(("bearer" = [])),
    params(CampaignStatsQuery),
    responses((status = 200, description = "The figures", body = CampaignStatsReport),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn campaign_stats(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<CampaignStatsQuery>,
) -> Result<Json<CampaignStatsReport>, ApiError> {
    let today = app.platform.today();
    let as_of = query.as_of.unwrap_or(today);
    let to = query.to.map_or(as_of, |to| to.min(as_of));
    app.platform.wait_for(MARKETING, query.min_position).await?;
    let now = app.platform.clock.now();
    let known_at = query.known_at.unwrap_or(now).min(now);
    let known = instant(known_at);
    let pool = &app.platform.db.any;
    let campaigns: Vec<CampaignInfo> = queries::campaigns(pool, None)
        .await?
        .into_iter()
        .filter(|row| row.planned_at <= known)
        .filter_map(|row| {
            let terms = row.state.terms?;
            Some(CampaignInfo {
                id: row.id,
                name: terms.name,
                currency: terms.budget.currency,
            })
        })
        .collect();
    let facts = queries::facts(pool, Some(&known)).await?;
    let window = Window {
        from: query.from,
        to,
        timezone: app.platform.settings.timezone,
    };
    let figures = stats::fold(&campaigns, &facts, window);
    Ok(Json(CampaignStatsReport {
        from: query.from,
        to,
        known_at,
        campaigns: figures
            .into_iter()
            .map(|f| CampaignStatsView {
                campaign_id: f.campaign_id,
                name: f.name,
                currency: f.currency,
                leads_attracted: f.leads_attracted,
                leads_converted: f.leads_converted,
                conversion_rate: f.conversion_rate,
                revenue: f.revenue.to_string(),
                spend: f.spend.to_string(),
                revenue_per_spend: f.revenue_per_spend.map(|r| r.to_string()),
                funnel: FunnelView {
                    new: f.funnel.new,
                    in_progress: f.funnel.in_progress,
                    converted: f.funnel.converted,
                    lost: f.funnel.lost,
                },
                time_new: f.time_new.into(),
                time_in_progress: f.time_in_progress.into(),
            })
            .collect(),
    }))
}

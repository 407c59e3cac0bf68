//! Marketing over REST: campaigns, leads, conversion with a contract,
//! contracts, customers, uploaded files and the campaign statistics.

mod campaigns;
mod contracts;
mod files;
mod leads;
mod stats;

use std::sync::Arc;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use annals_projections::marketing::MarketingProjector;
use annals_projections::Projector;

use super::AppState;
use crate::platform::Module;

pub use contracts::ContractView;
pub use files::CONTRACT_READERS;

pub struct MarketingModule;

impl Module for MarketingModule {
    fn name(&self) -> &'static str {
        "marketing"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        let uploads = OpenApiRouter::new()
            .routes(routes!(files::upload_file))
            .layer(axum::extract::DefaultBodyLimit::max(files::UPLOAD_LIMIT));
        OpenApiRouter::new()
            .routes(routes!(campaigns::plan_campaign, campaigns::list_campaigns))
            .routes(routes!(campaigns::get_campaign))
            .routes(routes!(campaigns::start_campaign))
            .routes(routes!(campaigns::complete_campaign))
            .routes(routes!(campaigns::cancel_campaign))
            .routes(routes!(campaigns::correct_budget))
            .routes(routes!(campaigns::record_spend))
            .routes(routes!(campaigns::campaign_channels))
            .routes(routes!(leads::create_lead, leads::list_leads))
            .routes(routes!(leads::get_lead, leads::update_lead))
            .routes(routes!(leads::start_lead))
            .routes(routes!(leads::lose_lead))
            .routes(routes!(leads::reopen_lead))
            .routes(routes!(leads::erase_lead))
            .routes(routes!(leads::add_lead_note))
            .routes(routes!(leads::assign_lead))
            .routes(routes!(leads::lead_history))
            .routes(routes!(contracts::convert_lead))
            .routes(routes!(contracts::list_contracts))
            .routes(routes!(contracts::get_contract))
            .routes(routes!(files::download_file))
            .routes(routes!(stats::campaign_stats))
            .merge(uploads)
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![Arc::new(MarketingProjector)]
    }
}

//! Marketing: ad campaigns for advertised services, the leads they bring,
//! and the contracts that turn leads into customers.

pub mod campaign;
pub mod contract;
pub mod lead;

#[cfg(test)]
mod tests;

pub use campaign::{Campaign, CampaignCommand, CampaignEvent, CampaignStatus};
pub use contract::{Contract, ContractCommand, ContractEvent, ContractTerms};
pub use lead::{Lead, LeadCommand, LeadContact, LeadEvent, LeadInfo, LeadStatus};

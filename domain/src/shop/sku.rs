//! The SKU register: one stream per SKU (upper-cased), saying which product
//! holds it. A product claims its SKU in the same commit that creates or
//! renames it, so two products never share one, whatever runs at once.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{RuleKind, RuleViolation};

/// The stream id of a SKU: SKUs are the same whatever their case.
pub fn sku_key(sku: &str) -> String {
    sku.trim().to_uppercase()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SkuCommand {
    Claim { product_id: Uuid },
    Release { product_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SkuEvent {
    Claimed { product_id: Uuid },
    Released { product_id: Uuid },
}

impl DomainEvent for SkuEvent {
    fn event_type(&self) -> String {
        match self {
            SkuEvent::Claimed { .. } => "SkuClaimed",
            SkuEvent::Released { .. } => "SkuReleased",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkuError {
    #[error("the SKU belongs to product {holder}")]
    Taken { holder: Uuid },
}

impl RuleViolation for SkuError {
    fn kind(&self) -> RuleKind {
        RuleKind::Conflict
    }
    fn code(&self) -> &'static str {
        "sku-taken"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SkuClaim {
    pub holder: Option<Uuid>,
}

pub fn decide(state: &SkuClaim, command: SkuCommand) -> Result<Vec<SkuEvent>, SkuError> {
    match command {
        SkuCommand::Claim { product_id } => match state.holder {
            Some(holder) if holder == product_id => Ok(vec![]),
            Some(holder) => Err(SkuError::Taken { holder }),
            None => Ok(vec![SkuEvent::Claimed { product_id }]),
        },
        SkuCommand::Release { product_id } => Ok(if state.holder == Some(product_id) {
            vec![SkuEvent::Released { product_id }]
        } else {
            vec![]
        }),
    }
}

pub fn evolve(state: &mut SkuClaim, event: &SkuEvent) {
    match event {
        SkuEvent::Claimed { product_id } => state.holder = Some(*product_id),
        SkuEvent::Released { .. } => state.holder = None,
    }
}

crate::decider_aggregate!(
    SkuClaim,
    "product_sku",
    SkuCommand,
    SkuEvent,
    SkuError,
    decide,
    evolve
);

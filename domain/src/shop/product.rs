//! A product: what it is, what it costs, which vehicles it fits, and — when
//! its stock is tracked — how many are on hand and how many placed orders
//! hold. Every reservation is an event on this stream, so concurrent
//! checkouts of one product conflict here and a unit is never sold twice.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

pub const YEARS: std::ops::RangeInclusive<u16> = 1900..=2100;
pub const MAX_IMAGES: usize = 20;
pub const MAX_FITMENT: usize = 200;
/// Largest quantity one stock movement may carry.
pub const MAX_MOVEMENT: u32 = 1_000_000;

/// A vehicle a part fits: make and model by name, a range of model years,
/// and optionally what narrows it (an engine, a trim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fitment {
    pub make: String,
    pub model: String,
    pub year_from: u16,
    pub year_to: u16,
    pub qualifier: Option<String>,
}

/// Everything that describes a product; all of it is replaced on update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductTerms {
    pub name: String,
    pub description: String,
    pub sku: String,
    pub category_id: Uuid,
    pub price: Money,
    pub images: Vec<String>,
    pub new_arrival: Option<NaiveDate>,
    pub track_stock: bool,
    /// Fits every vehicle (a fitment list, if any, is shown but does not
    /// narrow it).
    pub universal: bool,
    pub fitment: Vec<Fitment>,
}

fn text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() || value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
}

impl ProductTerms {
    /// The rules every version of a product obeys.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        text(&mut errors, "name", &self.name, 200);
        if self.description.chars().count() > 5000 {
            errors.push(FieldError::new(
                "description",
                "must be at most 5000 characters",
            ));
        }
        let sku = self.sku.trim();
        if sku.is_empty()
            || sku.len() > 64
            || !sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            errors.push(FieldError::new(
                "sku",
                "must be 1 to 64 letters, digits or - _ . /",
            ));
        }
        if self.images.len() > MAX_IMAGES {
            errors.push(FieldError::new("images", format!("at most {MAX_IMAGES}")));
        }
        for (i, url) in self.images.iter().enumerate() {
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url.chars().count() > 2000
                || url.contains(char::is_whitespace)
            {
                errors.push(FieldError::new(
                    format!("images[{i}]"),
                    "must be an http(s):// URL",
                ));
            }
        }
        if self.fitment.len() > MAX_FITMENT {
            errors.push(FieldError::new(
                "fitment",
                format!("at most {MAX_FITMENT} vehicles"),
            ));
        }
        for (i, fit) in self.fitment.iter().enumerate() {
            text(&mut errors, &format!("fitment[{i}].make"), &fit.make, 100);
            text(&mut errors, &format!("fitment[{i}].model"), &fit.model, 100);
            for (field, year) in [("year_from", fit.year_from), ("year_to", fit.year_to)] {
                if !YEARS.contains(&year) {
                    errors.push(FieldError::new(
                        format!("fitment[{i}].{field}"),
                        "must be a year from 1900 to 2100",
                    ));
                }
            }
            if fit.year_from > fit.year_to {
                errors.push(FieldError::new(
                    format!("fitment[{i}].year_to"),
                    "must not be before year_from",
                ));
            }
            if let Some(q) = &fit.qualifier {
                text(&mut errors, &format!("fitment[{i}].qualifier"), q, 100);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductCommand {
    Create {
        terms: ProductTerms,
    },
    Update {
        terms: ProductTerms,
    },
    Deactivate,
    Reactivate,
    /// Units arrived.
    Receive {
        quantity: u32,
    },
    /// A count found a different number on hand.
    Correct {
        on_hand: u32,
        reason: String,
    },
    /// A checkout holds `quantity` for an order (nothing for an untracked
    /// product; refused for an inactive one).
    Reserve {
        order_id: Uuid,
        quantity: u32,
    },
    /// A cancelled order gives its units back.
    Release {
        order_id: Uuid,
    },
    /// The order's units leave: shipped or put out for pickup.
    Dispatch {
        order_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductEvent {
    Created {
        terms: ProductTerms,
    },
    Updated {
        terms: ProductTerms,
    },
    Deactivated,
    Reactivated,
    StockReceived {
        quantity: u32,
    },
    StockCorrected {
        on_hand: u32,
        previous: u32,
        reason: String,
    },
    StockReserved {
        order_id: Uuid,
        quantity: u32,
    },
    StockReleased {
        order_id: Uuid,
        quantity: u32,
    },
    StockDispatched {
        order_id: Uuid,
        quantity: u32,
    },
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> String {
        match self {
            ProductEvent::Created { .. } => "ProductCreated",
            ProductEvent::Updated { .. } => "ProductUpdated",
            ProductEvent::Deactivated => "ProductDeactivated",
            ProductEvent::Reactivated => "ProductReactivated",
            ProductEvent::StockReceived { .. } => "StockReceived",
            ProductEvent::StockCorrected { .. } => "StockCorrected",
            ProductEvent::StockReserved { .. } => "StockReserved",
            ProductEvent::StockReleased { .. } => "StockReleased",
            ProductEvent::StockDispatched { .. } => "StockDispatched",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("the product exists already")]
    Exists,
    #[error("no such product")]
    NotFound,
    #[error("{name} is not for sale (deactivated)")]
    Inactive { name: String },
    #[error("{name}: only {available} available, {wanted} wanted")]
    OutOfStock {
        name: String,
        available: u32,
        wanted: u32,
    },
    #[error("the stock of this product is not tracked")]
    NotTracked,
    #[error("{reserved} units are reserved by placed orders: on hand cannot be less")]
    BelowReserved { reserved: u32 },
    #[error("invalid product")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for ProductError {
    fn kind(&self) -> RuleKind {
        match self {
            ProductError::NotFound => RuleKind::NotFound,
            ProductError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            ProductError::Exists => "product-exists",
            ProductError::NotFound => "not-found",
            ProductError::Inactive { .. } => "product-inactive",
            ProductError::OutOfStock { .. } => "out-of-stock",
            ProductError::NotTracked => "stock-not-tracked",
            ProductError::BelowReserved { .. } => "stock-reserved",
            ProductError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    pub on_hand: u32,
    pub reserved: u32,
}

impl Stock {
    pub fn available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub terms: Option<ProductTerms>,
    pub active: bool,
    pub stock: Stock,
    /// What each open order holds (until it is dispatched or released).
    pub reservations: BTreeMap<Uuid, u32>,
}

impl Product {
    fn terms(&self) -> Result<&ProductTerms, ProductError> {
        self.terms.as_ref().ok_or(ProductError::NotFound)
    }

    pub fn tracked(&self) -> bool {
        self.terms.as_ref().is_some_and(|t| t.track_stock)
    }
}

fn movement(field: &str, quantity: u32) -> Result<(), ProductError> {
    if quantity == 0 || quantity > MAX_MOVEMENT {
        return Err(ProductError::Invalid(vec![FieldError::new(
            field,
            format!("must be from 1 to {MAX_MOVEMENT}"),
        )]));
    }
    Ok(())
}

pub fn decide(state: &Product, command: ProductCommand) -> Result<Vec<ProductEvent>, ProductError> {
    use ProductEvent as E;
    match command {
        ProductCommand::Create { terms } => {
            if state.terms.is_some() {
                return Err(ProductError::Exists);
            }
            terms.check().map_err(ProductError::Invalid)?;
            Ok(vec![E::Created { terms }])
        }
        ProductCommand::Update { terms } => {
            let current = state.terms()?;
            terms.check().map_err(ProductError::Invalid)?;
            if !terms.track_stock && !state.reservations.is_empty() {
                return Err(ProductError::BelowReserved {
                    reserved: state.stock.reserved,
                });
            }
            Ok(if *current == terms {
                vec![]
            } else {
                vec![E::Updated { terms }]
            })
        }
        ProductCommand::Deactivate => {
            state.terms()?;
            Ok(if state.active {
                vec![E::Deactivated]
            } else {
                vec![]
            })
        }
        ProductCommand::Reactivate => {
            state.terms()?;
            Ok(if state.active {
                vec![]
            } else {
                vec![E::Reactivated]
            })
        }
        ProductCommand::Receive { quantity } => {
            state.terms()?;
            if !state.tracked() {
                return Err(ProductError::NotTracked);
            }
            movement("quantity", quantity)?;
            if state.stock.on_hand.saturating_add(quantity) > MAX_MOVEMENT * 100 {
                return Err(ProductError::Invalid(vec![FieldError::new(
                    "quantity",
                    "would make the stock larger than this system counts",
                )]));
            }
            Ok(vec![E::StockReceived { quantity }])
        }
        ProductCommand::Correct { on_hand, reason } => {
            state.terms()?;
            if !state.tracked() {
                return Err(ProductError::NotTracked);
            }
            let reason = reason.trim().to_string();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(ProductError::Invalid(vec![FieldError::new(
                    "reason",
                    "must be 1 to 500 characters",
                )]));
            }
            if on_hand > MAX_MOVEMENT * 100 {
                return Err(ProductError::Invalid(vec![FieldError::new(
                    "quantity_on_hand",
                    "is larger than this system counts",
                )]));
            }
            if on_hand < state.stock.reserved {
                return Err(ProductError::BelowReserved {
                    reserved: state.stock.reserved,
                });
            }
            Ok(if on_hand == state.stock.on_hand {
                vec![]
            } else {
                vec![E::StockCorrected {
                    on_hand,
                    previous: state.stock.on_hand,
                    reason,
                }]
            })
        }
        ProductCommand::Reserve { order_id, quantity } => {
            let terms = state.terms()?;
            if !state.active {
                return Err(ProductError::Inactive {
                    name: terms.name.clone(),
                });
            }
            if !terms.track_stock {
                return Ok(vec![]);
            }
            let available = state.stock.available();
            if quantity > available {
                return Err(ProductError::OutOfStock {
                    name: terms.name.clone(),
                    available,
                    wanted: quantity,
                });
            }
            Ok(vec![E::StockReserved { order_id, quantity }])
        }
        ProductCommand::Release { order_id } => Ok(match state.reservations.get(&order_id) {
            Some(&quantity) => vec![E::StockReleased { order_id, quantity }],
            None => vec![],
        }),
        ProductCommand::Dispatch { order_id } => Ok(match state.reservations.get(&order_id) {
            Some(&quantity) => vec![E::StockDispatched { order_id, quantity }],
            None => vec![],
        }),
    }
}

pub fn evolve(state: &mut Product, event: &ProductEvent) {
    match event {
        ProductEvent::Created { terms } => {
            state.terms = Some(terms.clone());
            state.active = true;
        }
        ProductEvent::Updated { terms } => state.terms = Some(terms.clone()),
        ProductEvent::Deactivated => state.active = false,
        ProductEvent::Reactivated => state.active = true,
        ProductEvent::StockReceived { quantity } => state.stock.on_hand += quantity,
        ProductEvent::StockCorrected { on_hand, .. } => state.stock.on_hand = *on_hand,
        ProductEvent::StockReserved { order_id, quantity } => {
            state.stock.reserved += quantity;
            *state.reservations.entry(*order_id).or_default() += quantity;
        }
        ProductEvent::StockReleased { order_id, quantity } => {
            state.stock.reserved = state.stock.reserved.saturating_sub(*quantity);
            state.reservations.remove(order_id);
        }
        ProductEvent::StockDispatched { order_id, quantity } => {
            state.stock.reserved = state.stock.reserved.saturating_sub(*quantity);
            state.stock.on_hand = state.stock.on_hand.saturating_sub(*quantity);
            state.reservations.remove(order_id);
        }
    }
}

crate::decider_aggregate!(
    Product,
    "product",
    ProductCommand,
    ProductEvent,
    ProductError,
    decide,
    evolve
);

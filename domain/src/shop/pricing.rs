//! The caller's price of a product, and where it came from: the one place
//! that turns a base price and a dealer's standing into a unit price, for
//! the cart, the checkout and so the order's lines.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The discount a dealer holds, and the decision that granted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealerTerms {
    pub discount_percent: u8,
    pub application_id: Uuid,
    pub approved_on: NaiveDate,
    /// Who approved it (their name, as shown then).
    pub approved_by: String,
}

/// The rule that changed a line's price: words a person reads, and the
/// same facts as fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRule {
    /// `dealer_discount`.
    pub kind: String,
    pub text: String,
    pub discount_percent: u8,
    pub application_id: Uuid,
    pub approved_on: NaiveDate,
    pub approved_by: String,
}

/// The unit price for `base`, rounded half away from zero to cents.
pub fn unit_price(base: Decimal, dealer: Option<&DealerTerms>) -> (Decimal, Option<PriceRule>) {
    let Some(terms) = dealer.filter(|t| t.discount_percent > 0) else {
        return (base, None);
    };
    let factor = Decimal::from(100 - u32::from(terms.discount_percent)) / Decimal::from(100);
    let mut price =
        (base * factor).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    price.rescale(2);
    let rule = PriceRule {
        kind: "dealer_discount".into(),
        text: format!(
            "dealer discount {}% — application #{}, approved {} by {}",
            terms.discount_percent, terms.application_id, terms.approved_on, terms.approved_by
        ),
        discount_percent: terms.discount_percent,
        application_id: terms.application_id,
        approved_on: terms.approved_on,
        approved_by: terms.approved_by.clone(),
    };
    (price, Some(rule))
}

/// `unit × quantity`, in cents.
pub fn line_total(unit: Decimal, quantity: u32) -> Decimal {
    let mut total = unit * Decimal::from(quantity);
    total.rescale(2);
    total
}

//! A cart: what someone means to buy, product by product. A signed-in
//! user's cart is the stream named by their user id; a guest's is named
//! by an id the server issued. Prices are not kept here: they are the
//! caller's prices when the cart is shown and when it is checked out.

use std::collections::BTreeMap;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{FieldError, RuleKind, RuleViolation};

pub const QUANTITY: std::ops::RangeInclusive<u32> = 1..=999;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CartCommand {
    /// Start a cart; `owner` is the signed-in user (None for a guest).
    Open {
        owner: Option<Uuid>,
    },
    /// Put `quantity` more of a product in (currency: the product's).
    Add {
        product_id: Uuid,
        quantity: u32,
        currency: String,
    },
    SetQuantity {
        product_id: Uuid,
        quantity: u32,
    },
    Remove {
        product_id: Uuid,
    },
    /// The cart became an order; it starts empty again.
    CheckOut {
        order_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CartEvent {
    Opened {
        owner: Option<Uuid>,
    },
    ItemAdded {
        product_id: Uuid,
        quantity: u32,
        currency: String,
    },
    QuantityChanged {
        product_id: Uuid,
        quantity: u32,
    },
    ItemRemoved {
        product_id: Uuid,
    },
    CheckedOut {
        order_id: Uuid,
    },
}

impl DomainEvent for CartEvent {
    fn event_type(&self) -> String {
        match self {
            CartEvent::Opened { .. } => "CartOpened",
            CartEvent::ItemAdded { .. } => "CartItemAdded",
            CartEvent::QuantityChanged { .. } => "CartQuantityChanged",
            CartEvent::ItemRemoved { .. } => "CartItemRemoved",
            CartEvent::CheckedOut { .. } => "CartCheckedOut",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    #[error("no such cart")]
    NotFound,
    #[error("the cart is open already")]
    Exists,
    #[error("quantity must be from 1 to 999 (in the cart: {in_cart})")]
    Quantity { in_cart: u32 },
    #[error(
        "the cart holds {cart} products; this one is priced in {product}: check out separately"
    )]
    MixedCurrencies { cart: String, product: String },
    #[error("the product is not in the cart")]
    NotInCart,
    #[error("the cart is empty")]
    Empty,
}

impl RuleViolation for CartError {
    fn kind(&self) -> RuleKind {
        match self {
            CartError::NotFound | CartError::NotInCart => RuleKind::NotFound,
            CartError::Quantity { .. } => {
                RuleKind::Invalid(vec![FieldError::new("quantity", self.to_string())])
            }
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            CartError::NotFound | CartError::NotInCart => "not-found",
            CartError::Exists => "cart-exists",
            CartError::Quantity { .. } => "validation",
            CartError::MixedCurrencies { .. } => "mixed-currencies",
            CartError::Empty => "cart-empty",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub quantity: u32,
    pub currency: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    pub open: bool,
    pub owner: Option<Uuid>,
    pub lines: BTreeMap<Uuid, CartLine>,
}

impl Cart {
    pub fn currency(&self) -> Option<&str> {
        self.lines.values().next().map(|l| l.currency.as_str())
    }
}

pub fn decide(state: &Cart, command: CartCommand) -> Result<Vec<CartEvent>, CartError> {
    use CartEvent as E;
    if !state.open && !matches!(command, CartCommand::Open { .. }) {
        return Err(CartError::NotFound);
    }
    match command {
        CartCommand::Open { owner } => {
            if state.open {
                return Err(CartError::Exists);
            }
            Ok(vec![E::Opened { owner }])
        }
        CartCommand::Add {
            product_id,
            quantity,
            currency,
        } => {
            let in_cart = state.lines.get(&product_id).map_or(0, |l| l.quantity);
            if !QUANTITY.contains(&quantity) || !QUANTITY.contains(&(in_cart + quantity.min(999))) {
                return Err(CartError::Quantity { in_cart });
            }
            if let Some(cart) = state.currency().filter(|c| *c != currency) {
                return Err(CartError::MixedCurrencies {
                    cart: cart.to_string(),
                    product: currency,
                });
            }
            Ok(vec![E::ItemAdded {
                product_id,
                quantity,
                currency,
            }])
        }
        CartCommand::SetQuantity {
            product_id,
            quantity,
        } => {
            let line = state.lines.get(&product_id).ok_or(CartError::NotInCart)?;
            if !QUANTITY.contains(&quantity) {
                return Err(CartError::Quantity {
                    in_cart: line.quantity,
                });
            }
            Ok(if line.quantity == quantity {
                vec![]
            } else {
                vec![E::QuantityChanged {
                    product_id,
                    quantity,
                }]
            })
        }
        CartCommand::Remove { product_id } => {
            state.lines.get(&product_id).ok_or(CartError::NotInCart)?;
            Ok(vec![E::ItemRemoved { product_id }])
        }
        CartCommand::CheckOut { order_id } => {
            if state.lines.is_empty() {
                return Err(CartError::Empty);
            }
            Ok(vec![E::CheckedOut { order_id }])
        }
    }
}

pub fn evolve(state: &mut Cart, event: &CartEvent) {
    match event {
        CartEvent::Opened { owner } => {
            state.open = true;
            state.owner = *owner;
        }
        CartEvent::ItemAdded {
            product_id,
            quantity,
            currency,
        } => {
            let line = state.lines.entry(*product_id).or_insert(CartLine {
                quantity: 0,
                currency: currency.clone(),
            });
            line.quantity += quantity;
        }
        CartEvent::QuantityChanged {
            product_id,
            quantity,
        } => {
            if let Some(line) = state.lines.get_mut(product_id) {
                line.quantity = *quantity;
            }
        }
        CartEvent::ItemRemoved { product_id } => {
            state.lines.remove(product_id);
        }
        CartEvent::CheckedOut { .. } => state.lines.clear(),
    }
}

crate::decider_aggregate!(
    Cart,
    "cart",
    CartCommand,
    CartEvent,
    CartError,
    decide,
    evolve
);

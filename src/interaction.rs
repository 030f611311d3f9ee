//! The interaction types an application can log and the rules of each: what `event_value`
//! means, whether a product is required, and which state table it syncs.
//! This table is the single source of truth for validation; the SQL table
//! `interaction_weights` holds only the tunable weights and counters.

use pgrx::prelude::*;

/// `popularity_engine.interaction_type`. The Rust names are the SQL labels, hence snake_case.
#[allow(non_camel_case_types)]
#[derive(PostgresEnum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum interaction_type {
    view,
    product_view,
    page_view,
    click,
    search_click,
    search,
    wishlist,
    wishlist_add,
    wishlist_remove,
    add_to_cart,
    cart_add,
    remove_from_cart,
    cart_remove,
    update_cart_quantity,
    cart_update,
    purchase,
    order,
    review,
    login,
    logout,
}

/// Whether an event of a type may, must or must not name a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductRule {
    Required,
    Optional,
    Forbidden,
}

/// What `event_value` may be for a type. `default` is what NULL means; `None` means NULL is
/// a missing required value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueRule {
    pub min: f64,
    pub max: f64,
    pub integer: bool,
    pub default: Option<f64>,
    /// How the rule reads in an error message, e.g. "an integer quantity >= 1".
    pub allowed: &'static str,
}

/// The user state table an event type keeps in sync, in the caller's transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateSync {
    None,
    CartAdd,
    CartRemove,
    CartSet,
    Wishlist,
    Purchase,
}

const ALWAYS_ONE: ValueRule = ValueRule {
    min: 1.0,
    max: 1.0,
    integer: true,
    default: Some(1.0),
    allowed: "1 (or NULL)",
};

impl interaction_type {
    pub const ALL: [interaction_type; 20] = [
        Self::view,
        Self::product_view,
        Self::page_view,
        Self::click,
        Self::search_click,
        Self::search,
        Self::wishlist,
        Self::wishlist_add,
        Self::wishlist_remove,
        Self::add_to_cart,
        Self::cart_add,
        Self::remove_from_cart,
        Self::cart_remove,
        Self::update_cart_quantity,
        Self::cart_update,
        Self::purchase,
        Self::order,
        Self::review,
        Self::login,
        Self::logout,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::view => "view",
            Self::product_view => "product_view",
            Self::page_view => "page_view",
            Self::click => "click",
            Self::search_click => "search_click",
            Self::search => "search",
            Self::wishlist => "wishlist",
            Self::wishlist_add => "wishlist_add",
            Self::wishlist_remove => "wishlist_remove",
            Self::add_to_cart => "add_to_cart",
            Self::cart_add => "cart_add",
            Self::remove_from_cart => "remove_from_cart",
            Self::cart_remove => "cart_remove",
            Self::update_cart_quantity => "update_cart_quantity",
            Self::cart_update => "cart_update",
            Self::purchase => "purchase",
            Self::order => "order",
            Self::review => "review",
            Self::login => "login",
            Self::logout => "logout",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.label() == label)
    }

    pub fn product_rule(self) -> ProductRule {
        match self {
            Self::page_view | Self::search => ProductRule::Optional,
            Self::login | Self::logout => ProductRule::Forbidden,
            _ => ProductRule::Required,
        }
    }

    pub fn value_rule(self) -> ValueRule {
        match self {
            Self::wishlist => ValueRule {
                min: 0.0,
                max: 1.0,
                integer: true,
                default: Some(1.0),
                allowed: "1 (add, the default) or 0 (remove)",
            },
            Self::add_to_cart => ValueRule {
                min: 1.0,
                max: 1_000_000.0,
                integer: true,
                default: Some(1.0),
                allowed: "an integer quantity from 1 to 1000000 (default 1)",
            },
            Self::remove_from_cart => ValueRule {
                min: 0.0,
                max: 1_000_000.0,
                integer: true,
                default: Some(1.0),
                allowed: "an integer quantity from 0 (remove all) to 1000000 (default 1)",
            },
            Self::update_cart_quantity => ValueRule {
                min: 0.0,
                max: 1_000_000.0,
                integer: true,
                default: None,
                allowed: "the new integer quantity from 0 (remove) to 1000000",
            },
            Self::review => ValueRule {
                min: 1.0,
                max: 5.0,
                integer: true,
                default: None,
                allowed: "an integer star rating from 1 to 5",
            },
            _ => ALWAYS_ONE,
        }
    }

    pub fn state_sync(self) -> StateSync {
        match self {
            Self::add_to_cart => StateSync::CartAdd,
            Self::remove_from_cart => StateSync::CartRemove,
            Self::update_cart_quantity => StateSync::CartSet,
            Self::wishlist => StateSync::Wishlist,
            Self::purchase | Self::order => StateSync::Purchase,
            _ => StateSync::None,
        }
    }

    /// Types that keep per-user state cannot be anonymous.
    pub fn requires_user(self) -> bool {
        self.state_sync() != StateSync::None
    }

    /// Searches must say what was searched for, in `metadata.search_query`.
    pub fn requires_search_query(self) -> bool {
        self == Self::search
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_round_trips() {
        for t in interaction_type::ALL {
            assert_eq!(interaction_type::from_label(t.label()), Some(t));
        }
        assert_eq!(interaction_type::from_label("View"), None);
    }

    #[test]
    fn state_types_require_a_user() {
        let with_state: Vec<_> = interaction_type::ALL
            .iter()
            .filter(|t| t.requires_user())
            .map(|t| t.label())
            .collect();
        assert_eq!(
            with_state,
            [
                "wishlist",
                "add_to_cart",
                "remove_from_cart",
                "update_cart_quantity",
                "purchase",
                "order"
            ]
        );
    }
}

//! Money as the models store it: integer minor units and a currency code,
//! already checked (`domain::Money`) when it was written.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::domain::Money;

/// Money as stored: integer minor units and a currency code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMoney {
    pub amount_minor: i64,
    pub currency: CompactString,
}

impl From<&Money> for StoredMoney {
    fn from(money: &Money) -> Self {
        Self {
            amount_minor: money.amount_minor,
            currency: money.currency.as_str().into(),
        }
    }
}

//! `Money` and `MoneyInput`: integer minor units and an ISO 4217 code.

use async_graphql::{InputObject, Object};
use compact_str::CompactString;

use super::scalars::Long;
use crate::db::money::StoredMoney;
use crate::domain::Money as DomainMoney;
use crate::error::{ApiError, ApiResult};

/// An amount of money: whole minor units (halalas for SAR) and a currency.
#[derive(Clone)]
pub struct Money {
    pub amount_minor: Long,
    /// Held inline: a currency code is never longer than a few bytes.
    pub currency: CompactString,
}

/// An amount of money: whole minor units (halalas for SAR) and a currency.
#[Object(cache_control(max_age = 86400))]
impl Money {
    /// The amount in the currency's minor unit (e.g. 150000 = 1,500.00 SAR).
    async fn amount_minor(&self) -> Long {
        self.amount_minor
    }

    /// ISO 4217 currency code, e.g. `SAR`.
    async fn currency(&self) -> &str {
        &self.currency
    }
}

impl From<&StoredMoney> for Money {
    fn from(m: &StoredMoney) -> Self {
        Self {
            amount_minor: Long(m.amount_minor),
            currency: m.currency.clone(),
        }
    }
}

impl super::rows::Plain for Money {
    fn plain(&self, field: &str) -> Option<super::rows::Scalar<'_>> {
        use super::rows::Scalar;
        use async_graphql::ScalarType;
        match field {
            "amountMinor" => Some(Scalar::Value(self.amount_minor.to_value())),
            "currency" => Some(Scalar::Text(&self.currency)),
            _ => None,
        }
    }
}

/// An amount of money to store.
#[derive(InputObject)]
pub struct MoneyInput {
    /// The amount in minor units; not negative.
    pub amount_minor: Long,
    /// ISO 4217 currency code, e.g. `SAR`.
    pub currency: String,
}

impl MoneyInput {
    pub fn parse(&self, field: &str) -> ApiResult<DomainMoney> {
        DomainMoney::parse(self.amount_minor.0, &self.currency)
            .map_err(|m| ApiError::bad_input(field, m))
    }

    /// The amount as stored, or why it is not one (a model's `check`).
    pub fn stored(self) -> Result<StoredMoney, String> {
        DomainMoney::parse(self.amount_minor.0, &self.currency).map(|m| StoredMoney::from(&m))
    }
}

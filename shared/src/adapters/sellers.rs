//! SP-API Sellers v1: the marketplaces a selling partner participates in
//! (`GET /sellers/v1/marketplaceParticipations`), which operators need to write SP-API report jobs.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::adapters::api::{ApiClient, Idempotency, Operation};
use crate::ports::SourceError;

/// getMarketplaceParticipations: 0.016 requests per second, burst 15.
pub const MARKETPLACE_PARTICIPATIONS: Operation = Operation {
    name: "sellers.getMarketplaceParticipations",
    rate: 0.016,
    burst: 15,
};

/// A marketplace and the seller's standing in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketplaceParticipation {
    /// The marketplace.
    pub marketplace: Marketplace,
    /// The seller's participation.
    pub participation: Participation,
}

/// A marketplace (`ATVPDKIKX0DER`, Amazon.com, US, USD, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marketplace {
    /// The marketplace id used by every SP-API call.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// ISO country code.
    #[serde(default)]
    pub country_code: String,
    /// Currency.
    #[serde(default)]
    pub default_currency_code: String,
    /// Storefront domain.
    #[serde(default)]
    pub domain_name: String,
}

/// Whether the seller sells there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participation {
    /// Participating.
    pub is_participating: bool,
    /// Some listings are suspended.
    #[serde(default)]
    pub has_suspended_listings: bool,
}

/// The Sellers API of one credential set (SP-API host, `x-amz-access-token`).
#[derive(Debug, Clone)]
pub struct SellersClient {
    api: ApiClient,
    base_url: String,
}

impl SellersClient {
    /// A client of `base_url` (the SP-API host of the region). `api` must send `x-amz-access-token`.
    pub fn new(api: ApiClient, base_url: impl Into<String>) -> Self {
        Self {
            api,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    /// The seller's marketplaces.
    pub async fn marketplace_participations(&self) -> Result<Vec<MarketplaceParticipation>, SourceError> {
        #[derive(Deserialize)]
        struct Payload {
            payload: Vec<MarketplaceParticipation>,
        }
        let response = self
            .api
            .send(
                &MARKETPLACE_PARTICIPATIONS,
                Method::GET,
                Idempotency::Idempotent,
                |r| r,
                &format!("{}/sellers/v1/marketplaceParticipations", self.base_url),
            )
            .await?;
        Ok(response.json::<Payload>()?.payload)
    }
}

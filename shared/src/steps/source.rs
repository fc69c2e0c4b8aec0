//! One job's source: the API client and the request it makes, dispatched by source kind.

use chrono::{DateTime, Utc};

use crate::adapters::ads_reports::{AdsReportRequest, AdsReportsClient};
use crate::adapters::amc::{AmcClient, AmcRequest};
use crate::adapters::slate::{SlateClient, SlateRequest};
use crate::adapters::sp_reports::{SpReportRequest, SpReportsClient};
use crate::domain::TimeWindow;
use crate::ports::{ReportSource, RequestStatus, SourceDocument, SourceError};

/// A source client bound to the request a job makes of it.
pub enum BoundSource {
    /// SP-API Reports.
    Sp(SpReportsClient, SpReportRequest),
    /// Ads reporting v3.
    Ads(AdsReportsClient, AdsReportRequest),
    /// AMC.
    Amc(AmcClient, AmcRequest),
    /// Slate (the request carries the job's watermark).
    Slate(SlateClient, SlateRequest),
}

/// Calls the same [`ReportSource`] method on whichever client is bound.
macro_rules! dispatch {
    ($self:expr, |$client:ident, $request:ident| $call:expr) => {
        match $self {
            BoundSource::Sp($client, $request) => $call,
            BoundSource::Ads($client, $request) => $call,
            BoundSource::Amc($client, $request) => $call,
            BoundSource::Slate($client, $request) => $call,
        }
    };
}

impl BoundSource {
    /// See [`ReportSource::create`].
    pub async fn create(&self, window: &TimeWindow) -> Result<String, SourceError> {
        dispatch!(self, |client, request| client.create(request, window).await)
    }

    /// See [`ReportSource::find_existing`].
    pub async fn find_existing(
        &self,
        window: &TimeWindow,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, SourceError> {
        dispatch!(self, |client, request| client
            .find_existing(request, window, since)
            .await)
    }

    /// See [`ReportSource::status`].
    pub async fn status(&self, id: &str) -> Result<RequestStatus, SourceError> {
        dispatch!(self, |client, request| client.status(request, id).await)
    }

    /// See [`ReportSource::documents`].
    pub async fn documents(&self, id: &str) -> Result<Vec<SourceDocument>, SourceError> {
        dispatch!(self, |client, request| client.documents(request, id).await)
    }
}

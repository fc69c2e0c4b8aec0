//! One job's source: the API client and the request it makes, behind one type whatever the source.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use crate::domain::TimeWindow;
use crate::ports::{ReportSource, RequestStatus, SourceDocument, SourceError};

/// A source client bound to the request a job makes of it (built by `Services::bind`).
pub struct BoundSource(Box<dyn Erased>);

/// [`ReportSource`] with the request bound and the futures boxed, so that any source fits one type.
trait Erased: Send + Sync {
    fn create<'a>(&'a self, window: &'a TimeWindow) -> BoxFuture<'a, Result<String, SourceError>>;
    fn find_existing<'a>(
        &'a self,
        window: &'a TimeWindow,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<String>, SourceError>>;
    fn status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RequestStatus, SourceError>>;
    fn documents<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<SourceDocument>, SourceError>>;
}

struct Bound<C: ReportSource> {
    client: C,
    request: C::Request,
}

impl<C: ReportSource> Erased for Bound<C> {
    fn create<'a>(&'a self, window: &'a TimeWindow) -> BoxFuture<'a, Result<String, SourceError>> {
        Box::pin(self.client.create(&self.request, window))
    }

    fn find_existing<'a>(
        &'a self,
        window: &'a TimeWindow,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
        Box::pin(self.client.find_existing(&self.request, window, since))
    }

    fn status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RequestStatus, SourceError>> {
        Box::pin(self.client.status(&self.request, id))
    }

    fn documents<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<SourceDocument>, SourceError>> {
        Box::pin(self.client.documents(&self.request, id))
    }
}

impl BoundSource {
    /// `client` bound to `request`.
    pub fn new<C: ReportSource + 'static>(client: C, request: C::Request) -> Self
    where
        C::Request: 'static,
    {
        Self(Box::new(Bound { client, request }))
    }

    /// See [`ReportSource::create`].
    pub async fn create(&self, window: &TimeWindow) -> Result<String, SourceError> {
        self.0.create(window).await
    }

    /// See [`ReportSource::find_existing`].
    pub async fn find_existing(
        &self,
        window: &TimeWindow,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, SourceError> {
        self.0.find_existing(window, since).await
    }

    /// See [`ReportSource::status`].
    pub async fn status(&self, id: &str) -> Result<RequestStatus, SourceError> {
        self.0.status(id).await
    }

    /// See [`ReportSource::documents`].
    pub async fn documents(&self, id: &str) -> Result<Vec<SourceDocument>, SourceError> {
        self.0.documents(id).await
    }
}

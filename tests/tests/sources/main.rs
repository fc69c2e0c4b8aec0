//! The Amazon API clients against the simulator, over real HTTP: happy paths, documented failure
//! modes, the exact request bodies and headers, and no duplicate creates under retries. One module
//! per API; the helpers below are shared.

mod ads;
mod amc;
mod contract;
mod lwa;
mod slate;
mod sp_api;

use std::sync::Arc;
use std::time::Duration;

use amzpipe::adapters::ads_reports::AdsReportsClient;
use amzpipe::adapters::amc::{AmcClient, AmcScope, Workflow};
use amzpipe::adapters::api::{ApiClient, AuthStyle, Policy, api_http_client};
use amzpipe::adapters::lwa::{Credentials, LwaClient, LwaError, LwaSession};
use amzpipe::adapters::s3::{Encryption as Sse, S3Sink};
use amzpipe::adapters::slate::{SlateClient, watermark};
use amzpipe::adapters::sp_reports::{ReportSchedule, SpReportsClient};
use amzpipe::domain::TimeWindow;
use amzpipe::domain::credentials::AccessToken;
use amzpipe::domain::source::amc::{AmcQuery, AmcRequest};
use amzpipe::domain::source::{AdsReportRequest, SlateRequest, SpReportRequest};
use amzpipe::ports::{ReportSource, RequestStatus, SourceDocument, SourceError};
use amzpipe::steps::StepError;
use amzpipe::transfer::{Destination, Encryption, TransferOptions, transfer_document};
use amzpipe_testkit::local_s3::LocalS3;
use amzpipe_testkit::replay::{Replay, Route};
use amzpipe_testkit::sim::{Fault, Scenario, SimConfig, Simulator};
use chrono::{DateTime, Duration as Days, Utc};
use secrecy::{ExposeSecret, SecretString};

fn credentials() -> Credentials {
    Credentials {
        client_id: "amzn1.application-oa2-client.sim".into(),
        client_secret: SecretString::from("sim-client-secret"),
        refresh_token: SecretString::from("Atzr|sim-refresh-token"),
    }
}

fn policy() -> Policy {
    Policy {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_inline_wait: Duration::from_secs(2),
        // The simulator serves its documents over plain http on loopback.
        allow_loopback_http: true,
        ..Policy::default()
    }
}

fn api(sim: &Simulator, auth: AuthStyle) -> ApiClient {
    let http = api_http_client(&policy()).expect("http client");
    let session = Arc::new(LwaSession::new(
        LwaClient::new(http.clone(), sim.token_url()),
        credentials(),
    ));
    ApiClient::new(http, session, auth, policy())
}

/// An API client whose session already holds `token` (the replay server plays no LWA).
async fn seeded_api(auth: AuthStyle, token: &str) -> ApiClient {
    let http = api_http_client(&policy()).expect("http client");
    let session = Arc::new(LwaSession::new(
        LwaClient::new(http.clone(), "http://127.0.0.1:9/never-called"),
        credentials(),
    ));
    session
        .seed(AccessToken {
            token: SecretString::from(token.to_owned()),
            expires_at: Utc::now() + Days::hours(1),
        })
        .await;
    ApiClient::new(http, session, auth, policy())
}

fn sp(sim: &Simulator) -> SpReportsClient {
    SpReportsClient::new(api(sim, AuthStyle::AmzAccessToken), sim.base_url())
}

fn ads(sim: &Simulator) -> AdsReportsClient {
    AdsReportsClient::new(api(sim, AuthStyle::Bearer), sim.base_url())
}

fn amc(sim: &Simulator) -> AmcClient {
    AmcClient::new(api(sim, AuthStyle::Bearer), sim.base_url())
}

fn day(offset: i64) -> DateTime<Utc> {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    today + Days::days(offset)
}

fn window(from: i64, to: i64) -> TimeWindow {
    TimeWindow::new(day(from), day(to)).expect("window")
}

fn orders() -> SpReportRequest {
    SpReportRequest {
        report_type: "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL".into(),
        marketplace_ids: vec!["ATVPDKIKX0DER".into()],
        report_options: Default::default(),
        format: None,
        restricted: None,
    }
}

fn campaigns() -> AdsReportRequest {
    AdsReportRequest {
        profile_id: "1234567890".into(),
        ad_product: "SPONSORED_PRODUCTS".into(),
        report_type_id: "spCampaigns".into(),
        columns: vec![
            "date".into(),
            "campaignId".into(),
            "impressions".into(),
            "clicks".into(),
            "cost".into(),
        ],
        group_by: vec!["campaign".into()],
        time_unit: "DAILY".into(),
        filters: vec![],
    }
}

fn reach_query() -> AmcRequest {
    AmcRequest {
        instance_id: "amcdemo01".into(),
        advertiser_id: "ENTITY1AA1AA11AAA1".into(),
        marketplace_id: "ATVPDKIKX0DER".into(),
        query: AmcQuery::Sql(
            "-- weekly reach\nSELECT campaign,\n  COUNT(DISTINCT user_id) AS reach\nFROM dsp_impressions\nGROUP BY 1"
                .into(),
        ),
        parameter_values: Default::default(),
        time_zone: Some("America/New_York".into()),
        timeout_seconds: None,
        require_synthetic_data: false,
    }
}

async fn poll_until_done<S: ReportSource>(source: &S, request: &S::Request, id: &str) -> (Vec<String>, RequestStatus) {
    let mut seen = Vec::new();
    for _ in 0..20 {
        match source.status(request, id).await.expect("status") {
            RequestStatus::InProgress { state } => seen.push(state),
            done => return (seen, done),
        }
    }
    panic!("never finished: {seen:?}");
}

async fn store(documents: Vec<SourceDocument>) -> Vec<(String, u64, Option<u64>)> {
    let s3 = LocalS3::start().await.expect("local s3");
    let client = s3.client().await;
    client.create_bucket().bucket("out").send().await.expect("bucket");
    let sink = S3Sink::new(client, "out", Sse::BucketDefault);
    let http = amzpipe::transfer::http::download_client().expect("client");
    let mut out = Vec::new();
    for (i, d) in documents.into_iter().enumerate() {
        let record = transfer_document(
            &http,
            &sink,
            d.document,
            &Destination {
                key_stem: format!("run/doc-{i}"),
            },
            &TransferOptions::default(),
        )
        .await
        .expect("transfer");
        out.extend(record.objects.into_iter().map(|o| (o.key, o.bytes, o.rows)));
    }
    out
}

//! The contract corpus (`tests/contract/`, see its README): Amazon's published schemas and examples,
//! and three checks against them for every API:
//!
//! 1. every request a client sends matches the published request shape (SP-API: validated against the
//!    official OpenAPI model with a JSON-schema validator);
//! 2. every published response parses into the client's types (served over HTTP by a replay server);
//! 3. the simulator's answers match the published response shapes, so it cannot drift from Amazon
//!    without a test failing here.
//!
//! Each check cites where its example or schema comes from.

use std::collections::HashMap;

use amzpipe::adapters::sellers::SellersClient;
use amzpipe::domain::iso;
use amzpipe_testkit::sim::Logged;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contract");

fn load(name: &str) -> Value {
    let bytes = std::fs::read(format!("{CORPUS}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A schema document: an official SP-API model (Swagger 2.0, whose schemas are JSON Schema draft 4
/// under `definitions`), or one of the corpus's transcribed files (draft 7 under `definitions`).
struct Schemas {
    doc: Value,
    draft4: bool,
}

impl Schemas {
    fn model(name: &str) -> Self {
        Self {
            doc: load(&format!("models/{name}")),
            draft4: true,
        }
    }

    fn corpus(name: &str) -> Self {
        Self {
            doc: load(name),
            draft4: false,
        }
    }

    /// What is wrong with `instance` as a `definition` (nothing when it is valid).
    fn problems(&self, definition: &str, instance: &Value) -> Vec<String> {
        assert!(
            self.doc["definitions"].get(definition).is_some(),
            "no definition {definition} in the corpus"
        );
        let schema = json!({
            "$ref": format!("#/definitions/{definition}"),
            "definitions": self.doc["definitions"],
        });
        let validator = if self.draft4 {
            jsonschema::draft4::new(&schema)
        } else {
            jsonschema::draft7::new(&schema)
        }
        .expect("the corpus's schemas compile");
        validator
            .iter_errors(instance)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect()
    }

    #[track_caller]
    fn assert_valid(&self, definition: &str, instance: &Value, what: &str) {
        let problems = self.problems(definition, instance);
        assert!(
            problems.is_empty(),
            "{what} is not a valid {definition}: {problems:#?}\n{instance:#}"
        );
    }

    /// The model's path template that `path` (without its query) instantiates, for `method`.
    fn template(&self, method: &str, path: &str) -> Option<String> {
        self.doc["paths"].as_object()?.iter().find_map(|(template, ops)| {
            (fits(template, path) && ops.get(method.to_ascii_lowercase()).is_some()).then(|| template.clone())
        })
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        &self.doc["paths"][template][method.to_ascii_lowercase()]
    }

    /// The definition a `$ref` names.
    fn referenced(schema: &Value) -> Option<String> {
        schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/definitions/"))
            .map(str::to_owned)
    }

    /// The definition of an operation's body parameter.
    fn body_definition(&self, method: &str, template: &str) -> Option<String> {
        self.operation(method, template)["parameters"]
            .as_array()?
            .iter()
            .find(|p| p["in"] == "body")
            .and_then(|p| Self::referenced(&p["schema"]))
    }

    /// The names of an operation's query parameters.
    fn query_parameters(&self, method: &str, template: &str) -> Vec<String> {
        self.operation(method, template)["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The definition of an operation's answer with `status`, if the model lists that status.
    fn response_definition(&self, method: &str, template: &str, status: u16) -> Option<Option<String>> {
        let response = self.operation(method, template)["responses"].get(status.to_string())?;
        Some(Self::referenced(&response["schema"]))
    }

    /// The sandbox examples of an operation's answer with `status`: (request parameters, response).
    fn sandbox(&self, method: &str, template: &str, status: u16) -> Vec<(Value, Value)> {
        self.operation(method, template)["responses"][status.to_string()]["x-amzn-api-sandbox"]["static"]
            .as_array()
            .map(|examples| {
                examples
                    .iter()
                    .map(|e| (e["request"]["parameters"].clone(), e["response"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The corpus's published example called `name`: its schema and body.
    fn example(&self, name: &str) -> (String, Value) {
        let example = self.doc["examples"]
            .as_array()
            .and_then(|examples| examples.iter().find(|e| e["name"] == name))
            .unwrap_or_else(|| panic!("no example {name:?}"));
        (
            example["schema"].as_str().expect("schema").to_owned(),
            example["body"].clone(),
        )
    }
}

/// Whether `path` instantiates `template` (`{name}` stands for one non-empty segment).
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

fn split_query(path_and_query: &str) -> (String, Vec<(String, String)>) {
    match path_and_query.split_once('?') {
        None => (path_and_query.to_owned(), Vec::new()),
        Some((path, query)) => (
            path.to_owned(),
            serde_urlencoded::from_str(query).expect("a well-formed query"),
        ),
    }
}

/// A fresh access token from the simulator's LWA, for calling it directly.
async fn sim_token(sim: &Simulator) -> String {
    let http = api_http_client(&policy()).expect("http client");
    let grant = LwaClient::new(http, sim.token_url())
        .refresh(&credentials())
        .await
        .expect("token");
    grant.access.token.expose_secret().to_owned()
}

/// Calls the simulator directly: the status and the JSON answered (`null` for an empty body).
async fn call(method: Method, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the simulator answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{url} answered non-JSON ({e}): {bytes:?}"))
    };
    (status, value)
}

// SP-API: Reports, Tokens, Sellers, against the official models.

fn sp_model_of(path: &str) -> Schemas {
    if path.starts_with("/tokens/") {
        Schemas::model("tokens_2021-03-01.json")
    } else if path.starts_with("/sellers/") {
        Schemas::model("sellers.json")
    } else {
        Schemas::model("reports_2021-06-30.json")
    }
}

/// Holds one logged SP-API request to its model: a documented path and method, documented query
/// parameters (a `nextToken` alone, as the model requires), and a body valid against the body schema.
fn assert_sp_request_matches_its_model(request: &Logged) {
    let (path, query) = split_query(&request.path);
    let model = sp_model_of(&path);
    let template = model
        .template(&request.method, &path)
        .unwrap_or_else(|| panic!("{} {path} is not an operation of the model", request.method));
    let allowed = model.query_parameters(&request.method, &template);
    for (name, _) in &query {
        assert!(
            allowed.contains(name),
            "{} {template} sent query parameter {name}, which the model does not define ({allowed:?})",
            request.method
        );
    }
    if query.iter().any(|(name, _)| name == "nextToken") {
        assert_eq!(query.len(), 1, "nextToken must be sent alone: {}", request.path);
    }
    match model.body_definition(&request.method, &template) {
        Some(definition) => {
            let body: Value = serde_json::from_str(&request.body).expect("a JSON body");
            model.assert_valid(
                &definition,
                &body,
                &format!("the body of {} {template}", request.method),
            );
        }
        None => assert!(request.body.is_empty(), "{} {template} takes no body", request.method),
    }
}

#[tokio::test]
async fn every_sp_api_request_the_clients_send_is_valid_against_the_official_models() {
    let sim = Simulator::start(SimConfig {
        sp_reports_page_max: 1,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = sp(&sim);
    let with_options = SpReportRequest {
        report_options: [("reportPeriod".to_owned(), "WEEK".to_owned())].into(),
        ..orders()
    };
    for request in [orders(), with_options, unshipped()] {
        let id = client.create(&request, &window(-2, -1)).await.expect("create");
        poll_until_done(&client, &request, &id).await;
        client.documents(&request, &id).await.expect("documents");
    }
    // The search for an earlier attempt's report, over several pages.
    client
        .find_existing(&orders(), &window(-2, -1), Utc::now() - Days::hours(1))
        .await
        .expect("search");
    let schedule = ReportSchedule {
        report_schedule_id: None,
        report_type: "GET_MERCHANT_LISTINGS_ALL_DATA".into(),
        marketplace_ids: vec!["ATVPDKIKX0DER".into()],
        report_options: Default::default(),
        period: "P1D".into(),
        next_report_creation_time: None,
    };
    let schedule_id = client.create_schedule(&schedule).await.expect("schedule");
    client
        .list_schedules(&["GET_MERCHANT_LISTINGS_ALL_DATA"])
        .await
        .expect("schedules");
    client.cancel_schedule(&schedule_id).await.expect("cancel schedule");
    SellersClient::new(api(&sim, AuthStyle::AmzAccessToken), sim.base_url())
        .marketplace_participations()
        .await
        .expect("participations");

    let requests: Vec<Logged> = sim
        .requests()
        .into_iter()
        .filter(|r| {
            ["/reports/", "/tokens/", "/sellers/"]
                .iter()
                .any(|p| r.path.starts_with(p))
        })
        .collect();
    for op in [
        "sp.createReport",
        "sp.getReports",
        "sp.getReport",
        "sp.getReportDocument",
        "sp.createRestrictedDataToken",
        "sp.createReportSchedule",
    ] {
        assert!(requests.iter().any(|r| r.op == op), "{op} was exercised");
    }
    for request in &requests {
        assert_sp_request_matches_its_model(request);
    }
}

fn unshipped() -> SpReportRequest {
    SpReportRequest {
        report_type: "GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING".into(),
        ..orders()
    }
}

#[tokio::test]
async fn the_official_sp_api_sandbox_responses_parse_into_the_client() {
    // Every route answers the model's own `x-amzn-api-sandbox` example (reports_2021-06-30.json,
    // tokens_2021-03-01.json, sellers.json).
    let reports = Schemas::model("reports_2021-06-30.json");
    let tokens = Schemas::model("tokens_2021-03-01.json");
    let sellers = Schemas::model("sellers.json");
    let first = |m: &Schemas, method: &str, template: &str, status: u16| {
        m.sandbox(method, template, status)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("a sandbox example for {method} {template} {status}"))
            .1
    };
    let rdt = first(&tokens, "POST", "/tokens/2021-03-01/restrictedDataToken", 200);
    let replay = Replay::start(vec![
        Route::new(
            Method::POST,
            "/reports/2021-06-30/reports",
            202,
            first(&reports, "POST", "/reports/2021-06-30/reports", 202),
        ),
        Route::new(
            Method::GET,
            "/reports/2021-06-30/reports",
            200,
            first(&reports, "GET", "/reports/2021-06-30/reports", 200),
        ),
        Route::new(
            Method::GET,
            "/reports/2021-06-30/reports/ID323",
            200,
            first(&reports, "GET", "/reports/2021-06-30/reports/{reportId}", 200),
        ),
        Route::new(
            Method::GET,
            "/reports/2021-06-30/reports/badReportId1",
            400,
            first(&reports, "GET", "/reports/2021-06-30/reports/{reportId}", 400),
        ),
        Route::new(
            Method::DELETE,
            "/reports/2021-06-30/reports/ID",
            200,
            first(&reports, "DELETE", "/reports/2021-06-30/reports/{reportId}", 200),
        ),
        Route::new(
            Method::GET,
            "/reports/2021-06-30/documents/0356cf79-b8b0-4226-b4b9-0ee058ea5760",
            200,
            first(&reports, "GET", "/reports/2021-06-30/documents/{reportDocumentId}", 200),
        ),
        Route::new(
            Method::GET,
            "/reports/2021-06-30/schedules",
            200,
            first(&reports, "GET", "/reports/2021-06-30/schedules", 200),
        ),
        Route::new(
            Method::POST,
            "/reports/2021-06-30/schedules",
            201,
            first(&reports, "POST", "/reports/2021-06-30/schedules", 201),
        ),
        Route::new(
            Method::DELETE,
            "/reports/2021-06-30/schedules/ID",
            200,
            first(
                &reports,
                "DELETE",
                "/reports/2021-06-30/schedules/{reportScheduleId}",
                200,
            ),
        ),
        Route::new(Method::POST, "/tokens/2021-03-01/restrictedDataToken", 200, rdt.clone()),
        Route::new(
            Method::GET,
            "/sellers/v1/marketplaceParticipations",
            200,
            first(&sellers, "GET", "/sellers/v1/marketplaceParticipations", 200),
        ),
    ])
    .await
    .expect("replay");
    let client = SpReportsClient::new(
        seeded_api(AuthStyle::AmzAccessToken, "Atza|fake").await,
        replay.base_url(),
    );

    // createReport 202 {"reportId": "ID323"}.
    let request = SpReportRequest {
        report_type: "GET_MERCHANT_LISTINGS_ALL_DATA".into(),
        ..orders()
    };
    assert_eq!(client.create(&request, &window(-2, -1)).await.expect("create"), "ID323");
    // getReport 200: IN_PROGRESS.
    assert_eq!(
        client.status(&request, "ID323").await.expect("status"),
        RequestStatus::InProgress {
            state: "IN_PROGRESS".into()
        }
    );
    // getReport 400 {"errors":[{"code":"400","message":"Invalid input",…}]}: a request error.
    let err = client.status(&request, "badReportId1").await.expect_err("400");
    assert!(
        matches!(&err, SourceError::Invalid(m) if m.contains("Invalid input")),
        "{err:?}"
    );
    // getReports 200 with a nextToken: the next page is asked for with the token alone.
    let found = client
        .find_reports(&request, Utc::now() - Days::days(1))
        .await
        .expect("getReports");
    assert!(!found.is_empty() && found.iter().all(|r| r.report_id == "ReportId1"));
    assert!(
        replay
            .received()
            .iter()
            .filter(|r| r.query.contains_key("nextToken"))
            .all(|r| r.query.len() == 1)
    );
    // cancelReport 200 with no body.
    client.cancel_report("ID").await.expect("cancel");
    // getReportDocument 200 without compressionAlgorithm: a plain document at the URL given.
    let document = client
        .document(&request, "0356cf79-b8b0-4226-b4b9-0ee058ea5760")
        .await
        .expect("document");
    assert_eq!(
        document.document.compression,
        amzpipe::domain::document::Compression::None
    );
    // The same document of a restricted report type, with the sandbox's Restricted Data Token.
    client
        .document(&unshipped(), "0356cf79-b8b0-4226-b4b9-0ee058ea5760")
        .await
        .expect("restricted document");
    let sent = replay
        .received()
        .into_iter()
        .filter(|r| r.path.starts_with("/reports/2021-06-30/documents/"))
        .map(|r| r.headers.get("x-amz-access-token").cloned().unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(
        sent,
        vec![
            "Atza|fake".to_owned(),
            rdt["restrictedDataToken"].as_str().expect("rdt").to_owned()
        ]
    );
    // Schedules: list, create, cancel.
    let schedules = client
        .list_schedules(&["FEE_DISCOUNTS_REPORT", "GET_FBA_FULFILLMENT_CUSTOMER_TAXES_DATA"])
        .await
        .expect("schedules");
    assert_eq!(schedules.len(), 2);
    assert_eq!(schedules[0].period, "PT5M");
    let schedule = ReportSchedule {
        report_schedule_id: None,
        report_type: "FEE_DISCOUNTS_REPORT".into(),
        marketplace_ids: vec!["ATVPDKIKX0DER".into()],
        report_options: Default::default(),
        period: "PT5M".into(),
        next_report_creation_time: None,
    };
    assert_eq!(
        client.create_schedule(&schedule).await.expect("create schedule"),
        "ID323"
    );
    client.cancel_schedule("ID").await.expect("cancel schedule");
    // Sellers: marketplaceParticipations 200 {"payload": [...]}.
    let participations = SellersClient::new(
        seeded_api(AuthStyle::AmzAccessToken, "Atza|fake").await,
        replay.base_url(),
    )
    .marketplace_participations()
    .await
    .expect("participations");
    assert_eq!(participations.len(), 1);
}

#[tokio::test]
async fn the_simulators_sp_api_answers_are_valid_against_the_official_models() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let token = sim_token(&sim).await;
    let base = sim.base_url().to_owned();
    let auth = [("x-amz-access-token", token.as_str())];
    let mut checked = Vec::new();
    let mut check = |method: &str, path: &str, status: u16, answer: &Value| {
        let (path, _) = split_query(path);
        let model = sp_model_of(&path);
        let template = model
            .template(method, &path)
            .unwrap_or_else(|| panic!("{method} {path} is not in the model"));
        let definition = model
            .response_definition(method, &template, status)
            .unwrap_or_else(|| panic!("the model lists no {status} answer for {method} {template}"));
        if let Some(definition) = definition {
            model.assert_valid(
                &definition,
                answer,
                &format!("the simulator's {status} to {method} {template}"),
            );
        }
        checked.push(format!("{method} {template} {status}"));
    };

    // The model's own sandbox request for createReport, with dates the simulator takes.
    let create = json!({"reportType": "GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING",
        "dataStartTime": iso(day(-2)), "dataEndTime": iso(day(-1)), "marketplaceIds": ["ATVPDKIKX0DER"]});
    let path = "/reports/2021-06-30/reports";
    let (status, answer) = call(Method::POST, &format!("{base}{path}"), &auth, Some(&create)).await;
    check("POST", path, status, &answer);
    let id = answer["reportId"].as_str().expect("reportId").to_owned();
    let report_path = format!("/reports/2021-06-30/reports/{id}");
    let mut document_id = None;
    for _ in 0..5 {
        let (status, answer) = call(Method::GET, &format!("{base}{report_path}"), &auth, None).await;
        check("GET", &report_path, status, &answer);
        if let Some(d) = answer["reportDocumentId"].as_str() {
            document_id = Some(d.to_owned());
            break;
        }
    }
    let document_id = document_id.expect("the report finishes");
    let list = format!("{path}?reportTypes=GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING&pageSize=10");
    let (status, answer) = call(Method::GET, &format!("{base}{list}"), &auth, None).await;
    check("GET", &list, status, &answer);
    let bad = json!({"reportType": "bad type", "marketplaceIds": ["ATVPDKIKX0DER"]});
    let (status, answer) = call(Method::POST, &format!("{base}{path}"), &auth, Some(&bad)).await;
    assert_eq!(status, 400);
    check("POST", path, status, &answer);
    let (status, answer) = call(Method::GET, &format!("{base}{path}/999"), &auth, None).await;
    check("GET", &format!("{path}/999"), status, &answer);

    // The RDT and the restricted document.
    let rdt_path = "/tokens/2021-03-01/restrictedDataToken";
    let document_path = format!("/reports/2021-06-30/documents/{document_id}");
    let rdt_body = json!({"restrictedResources": [{"method": "GET", "path": document_path}]});
    let (status, answer) = call(Method::POST, &format!("{base}{rdt_path}"), &auth, Some(&rdt_body)).await;
    check("POST", rdt_path, status, &answer);
    let generic =
        json!({"restrictedResources": [{"method": "GET", "path": "/reports/2021-06-30/documents/{reportDocumentId}"}]});
    let (status, refused) = call(Method::POST, &format!("{base}{rdt_path}"), &auth, Some(&generic)).await;
    assert_eq!(status, 400, "a generic document path is refused");
    check("POST", rdt_path, status, &refused);
    let rdt = answer["restrictedDataToken"].as_str().expect("rdt").to_owned();
    let (status, answer) = call(
        Method::GET,
        &format!("{base}{document_path}"),
        &[("x-amz-access-token", rdt.as_str())],
        None,
    )
    .await;
    check("GET", &document_path, status, &answer);
    let (status, answer) = call(Method::GET, &format!("{base}{document_path}"), &auth, None).await;
    assert_eq!(status, 403, "a restricted document refuses the ordinary token");
    check("GET", &document_path, status, &answer);

    // Schedules.
    let schedules = "/reports/2021-06-30/schedules";
    let body = json!({"reportType": "FEE_DISCOUNTS_REPORT", "period": "PT5M", "marketplaceIds": ["ATVPDKIKX0DER"]});
    let (status, answer) = call(Method::POST, &format!("{base}{schedules}"), &auth, Some(&body)).await;
    check("POST", schedules, status, &answer);
    let schedule = format!("{schedules}/{}", answer["reportScheduleId"].as_str().expect("id"));
    let list = format!("{schedules}?reportTypes=FEE_DISCOUNTS_REPORT");
    let (status, answer) = call(Method::GET, &format!("{base}{list}"), &auth, None).await;
    check("GET", &list, status, &answer);
    let (status, answer) = call(Method::GET, &format!("{base}{schedule}"), &auth, None).await;
    check("GET", &schedule, status, &answer);

    // Sellers.
    let sellers = "/sellers/v1/marketplaceParticipations";
    let (status, answer) = call(Method::GET, &format!("{base}{sellers}"), &auth, None).await;
    check("GET", sellers, status, &answer);

    assert_eq!(checked.len(), 15, "{checked:#?}");
}

// Ads reporting v3 and profiles.

fn ads_headers<'a>(token: &'a str, bearer: &'a mut String) -> Vec<(&'static str, &'a str)> {
    *bearer = format!("Bearer {token}");
    vec![
        ("authorization", bearer.as_str()),
        ("amazon-advertising-api-clientid", "amzn1.application-oa2-client.sim"),
        ("amazon-advertising-api-scope", "1234567890"),
        ("content-type", "application/vnd.createasyncreportrequest.v3+json"),
    ]
}

/// The get-started guide's request, as an AdsReportRequest over its window.
fn guide_report() -> (AdsReportRequest, TimeWindow) {
    let corpus = Schemas::corpus("ads_reporting_v3.json");
    let (_, body) = corpus.example("the get-started guide's create request");
    let c = &body["configuration"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let request = AdsReportRequest {
        profile_id: "1234567890".into(),
        ad_product: c["adProduct"].as_str().expect("adProduct").into(),
        report_type_id: c["reportTypeId"].as_str().expect("reportTypeId").into(),
        columns: strings(&c["columns"]),
        group_by: strings(&c["groupBy"]),
        time_unit: c["timeUnit"].as_str().expect("timeUnit").into(),
        filters: serde_json::from_value(c["filters"].clone()).expect("filters"),
    };
    let date = |k: &str| {
        chrono::NaiveDate::parse_from_str(body[k].as_str().expect("date"), "%Y-%m-%d")
            .expect("date")
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    };
    let window = TimeWindow::new(date("startDate"), date("endDate") + Days::days(1)).expect("window");
    (request, window)
}

#[tokio::test]
async fn every_ads_request_the_client_sends_has_the_published_shape() {
    let corpus = Schemas::corpus("ads_reporting_v3.json");
    // The published example itself is valid (the schema is not stricter than Amazon's own sample).
    let (schema, example) = corpus.example("the get-started guide's create request");
    corpus.assert_valid(&schema, &example, "the guide's sample request");

    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = ads(&sim);
    let (mut request, _) = guide_report();
    // Dates the simulator takes (its retention window is today's).
    let id = client.create(&request, &window(-3, -1)).await.expect("create");
    request.filters.clear();
    request.time_unit = "SUMMARY".into();
    // (a SUMMARY report is dated by startDate and endDate, not by date: reference §3.2)
    request.columns.retain(|c| c != "date");
    request.columns.extend(["startDate".to_owned(), "endDate".to_owned()]);
    client.create(&request, &window(-3, -1)).await.expect("create");
    client.status(&request, &id).await.expect("status");
    client.profiles().await.expect("profiles");
    for logged in sim.requests_of("ads.createReport") {
        assert_eq!(
            logged.headers.get("content-type").map(String::as_str),
            Some("application/vnd.createasyncreportrequest.v3+json")
        );
        let body: Value = serde_json::from_str(&logged.body).expect("json");
        corpus.assert_valid("CreateAsyncReportRequest", &body, "the client's create body");
    }
}

#[tokio::test]
async fn the_published_ads_responses_parse_into_the_client() {
    let corpus = Schemas::corpus("ads_reporting_v3.json");
    let (_, pending) = corpus.example("the create answer: the whole AsyncReport, PENDING, nulls explicit");
    let (_, completed) = corpus.example("a completed report");
    let (_, duplicate) = corpus.example("a duplicate create");
    let (_, profiles) = corpus.example("a profile");
    for name in [
        "the create answer: the whole AsyncReport, PENDING, nulls explicit",
        "a completed report",
        "a duplicate create",
        "a profile",
    ] {
        let (schema, body) = corpus.example(name);
        corpus.assert_valid(&schema, &body, name);
    }
    let id = pending["reportId"].as_str().expect("id").to_owned();
    let replay = Replay::start(vec![
        Route::new(Method::POST, "/reporting/reports", 200, pending.clone()),
        Route::new(Method::GET, &format!("/reporting/reports/{id}"), 200, completed),
        Route::new(Method::GET, "/v2/profiles", 200, profiles),
    ])
    .await
    .expect("replay");
    let client = AdsReportsClient::new(seeded_api(AuthStyle::Bearer, "Atza|fake").await, replay.base_url());
    // (the guide's request over a recent window: its own dates are older than the data Amazon keeps,
    // which the client refuses before calling)
    let (request, guide_window) = guide_report();
    assert!(
        client
            .create(&request, &guide_window)
            .await
            .is_err_and(|e| e.to_string().contains("kept for 95 days"))
    );
    let window = window(-6, -1);
    assert_eq!(client.create(&request, &window).await.expect("create"), id);
    assert_eq!(
        client.status(&request, &id).await.expect("status"),
        RequestStatus::Ready
    );
    let documents = client.documents(&request, &id).await.expect("documents");
    assert_eq!(documents[0].size, Some(556));
    let profiles = client.profiles().await.expect("profiles");
    assert_eq!(profiles.len(), 1);

    // A 425 names the report it duplicates; the client reuses it once its configuration matches
    // (the published report, over the recent window asked for).
    let mut pending = pending;
    pending["startDate"] = json!(window.start.format("%Y-%m-%d").to_string());
    pending["endDate"] = json!((window.end - Days::days(1)).format("%Y-%m-%d").to_string());
    let replay = Replay::start(vec![
        Route::new(Method::POST, "/reporting/reports", 425, duplicate),
        Route::new(Method::GET, &format!("/reporting/reports/{id}"), 200, pending),
    ])
    .await
    .expect("replay");
    let client = AdsReportsClient::new(seeded_api(AuthStyle::Bearer, "Atza|fake").await, replay.base_url());
    assert_eq!(client.create(&request, &window).await.expect("reused"), id);
}

#[tokio::test]
async fn an_ads_status_outside_the_published_enum_fails_the_run_instead_of_being_polled_for_hours() {
    // AsyncReport.status is PENDING, PROCESSING, COMPLETED or FAILED (OfflineReport_prod_3p.json);
    // an earlier simulator answered CANCELLED after a delete, and the client polled it as in progress.
    let corpus = Schemas::corpus("ads_reporting_v3.json");
    let (_, mut report) = corpus.example("the create answer: the whole AsyncReport, PENDING, nulls explicit");
    report["status"] = json!("CANCELLED");
    assert!(
        !corpus.problems("AsyncReport", &report).is_empty(),
        "not a published status"
    );
    let id = report["reportId"].as_str().expect("id").to_owned();
    let replay = Replay::start(vec![Route::new(
        Method::GET,
        &format!("/reporting/reports/{id}"),
        200,
        report,
    )])
    .await
    .expect("replay");
    let client = AdsReportsClient::new(seeded_api(AuthStyle::Bearer, "Atza|fake").await, replay.base_url());
    let (request, _) = guide_report();
    let status = client.status(&request, &id).await.expect("status");
    assert!(
        matches!(&status, RequestStatus::Failed { state, .. } if state == "CANCELLED"),
        "{status:?}"
    );
}

#[tokio::test]
async fn the_simulators_ads_answers_have_the_published_shapes_and_statuses() {
    let corpus = Schemas::corpus("ads_reporting_v3.json");
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let token = sim_token(&sim).await;
    let mut bearer = String::new();
    let headers = ads_headers(&token, &mut bearer);
    let base = sim.base_url();
    let (_, mut body) = corpus.example("the get-started guide's create request");
    body["startDate"] = json!(day(-3).date_naive().to_string());
    body["endDate"] = json!(day(-1).date_naive().to_string());
    let (status, created) = call(
        Method::POST,
        &format!("{base}/reporting/reports"),
        &headers,
        Some(&body),
    )
    .await;
    assert_eq!(status, 200);
    corpus.assert_valid("AsyncReport", &created, "the simulator's create answer");
    let (status, duplicate) = call(
        Method::POST,
        &format!("{base}/reporting/reports"),
        &headers,
        Some(&body),
    )
    .await;
    assert_eq!(status, 425);
    corpus.assert_valid("AsyncReportingError", &duplicate, "the simulator's 425");
    let id = created["reportId"].as_str().expect("id");
    for _ in 0..4 {
        let (status, report) = call(Method::GET, &format!("{base}/reporting/reports/{id}"), &headers, None).await;
        assert_eq!(status, 200);
        corpus.assert_valid("AsyncReport", &report, "the simulator's report");
    }
    // Deleting a PENDING report answers DeleteAsyncReportResponse; the report then is gone, never a
    // status outside the published enum (there is no CANCELLED).
    body["startDate"] = json!(day(-5).date_naive().to_string());
    let (_, pending) = call(
        Method::POST,
        &format!("{base}/reporting/reports"),
        &headers,
        Some(&body),
    )
    .await;
    let pending_id = pending["reportId"].as_str().expect("id");
    let url = format!("{base}/reporting/reports/{pending_id}");
    let (status, deleted) = call(Method::DELETE, &url, &headers, None).await;
    assert_eq!(status, 200);
    corpus.assert_valid("DeleteAsyncReportResponse", &deleted, "the simulator's delete answer");
    let (status, gone) = call(Method::GET, &url, &headers, None).await;
    assert_eq!(status, 404, "{gone}");
    corpus.assert_valid("AsyncReportingError", &gone, "the simulator's 404");
    // Profiles take no Scope.
    let (status, profiles) = call(Method::GET, &format!("{base}/v2/profiles"), &headers[..2], None).await;
    assert_eq!(status, 200);
    corpus.assert_valid("Profiles", &profiles, "the simulator's profiles");
}

// AMC.

fn amc_headers<'a>(token: &'a str, bearer: &'a mut String) -> Vec<(&'static str, &'a str)> {
    *bearer = format!("Bearer {token}");
    vec![
        ("authorization", bearer.as_str()),
        ("amazon-advertising-api-clientid", "amzn1.application-oa2-client.sim"),
        ("amazon-advertising-api-advertiserid", "ENTITY1AA1AA11AAA1"),
        ("amazon-advertising-api-marketplaceid", "ATVPDKIKX0DER"),
    ]
}

#[tokio::test]
async fn every_amc_request_the_client_sends_has_the_published_shape() {
    let corpus = Schemas::corpus("amc_reporting.json");
    let (schema, example) = corpus.example("an ad-hoc execution over an explicit window in New York time");
    corpus.assert_valid(&schema, &example, "the published request");
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = amc(&sim);
    let new_york = AmcRequest {
        time_zone: Some("America/New_York".into()),
        parameter_values: [("campaign".to_owned(), "c-1".to_owned())].into(),
        ..reach_query()
    };
    let saved = AmcRequest {
        query: AmcQuery::WorkflowId("weekly_reach".into()),
        ..reach_query()
    };
    let scope = AmcScope {
        instance_id: saved.instance_id.clone(),
        advertiser_id: saved.advertiser_id.clone(),
        marketplace_id: saved.marketplace_id.clone(),
    };
    let workflow = Workflow {
        workflow_id: "weekly_reach".into(),
        sql: "SELECT 1".into(),
        fields: serde_json::Map::new(),
    };
    client.create_workflow(&scope, &workflow).await.expect("workflow");
    for request in [reach_query(), new_york, saved] {
        client.create(&request, &window(-3, -2)).await.expect("create");
    }
    let created = sim.requests_of("amc.createExecution");
    assert_eq!(created.len(), 3);
    for logged in created {
        let body: Value = serde_json::from_str(&logged.body).expect("json");
        corpus.assert_valid("CreateWorkflowExecutionRequest", &body, "the client's create body");
    }
}

#[tokio::test]
async fn the_published_amc_responses_parse_into_the_client() {
    let corpus = Schemas::corpus("amc_reporting.json");
    for name in [
        "the execution, its window echoed in UTC and as sent",
        "the same execution wrapped, as the spec's GetWorkflowExecutionResponse",
        "download URLs",
        "results not ready",
    ] {
        let (schema, body) = corpus.example(name);
        corpus.assert_valid(&schema, &body, name);
    }
    let (_, execution) = corpus.example("the execution, its window echoed in UTC and as sent");
    let (_, wrapped) = corpus.example("the same execution wrapped, as the spec's GetWorkflowExecutionResponse");
    let (_, urls) = corpus.example("download URLs");
    let id = execution["workflowExecutionId"].as_str().expect("id").to_owned();
    let root = "/amc/reporting/amcdemo01";
    // The list asked for with includeWorkflow=true: each execution carries its sqlQuery (spec).
    let mut listed = execution.clone();
    listed["sqlQuery"] = json!(amzpipe::domain::source::amc::single_line_sql(
        match &reach_query().query {
            AmcQuery::Sql(sql) => sql,
            AmcQuery::WorkflowId(_) => unreachable!("an ad-hoc query"),
        }
    ));
    let replay = Replay::start(vec![
        Route::new(
            Method::GET,
            &format!("{root}/workflowExecutions"),
            200,
            json!({"executions": [listed], "nextToken": null}),
        ),
        Route::new(Method::GET, &format!("{root}/workflowExecutions/{id}"), 200, wrapped),
        Route::new(
            Method::GET,
            &format!("{root}/workflowExecutions/{id}/downloadUrls"),
            200,
            urls,
        ),
        Route::new(
            Method::GET,
            &format!("{root}/workflows/weekly_reach"),
            200,
            json!({"workflow": {"workflowId": "weekly_reach", "sqlQuery": "SELECT 1"}}),
        ),
    ])
    .await
    .expect("replay");
    let client = AmcClient::new(seeded_api(AuthStyle::Bearer, "Atza|fake").await, replay.base_url());
    // The sample's window: 2022-09-20T00:00:00 to 2022-09-21T00:00:00 in New York, echoed in UTC.
    let request = AmcRequest {
        time_zone: Some("America/New_York".into()),
        ..reach_query()
    };
    let start = chrono::NaiveDate::from_ymd_opt(2022, 9, 20)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("date")
        .and_utc();
    let sample_window = TimeWindow::new(start, start + Days::days(1)).expect("window");
    let found = client
        .find_existing(&request, &sample_window, start)
        .await
        .expect("search");
    assert_eq!(
        found.as_deref(),
        Some(id.as_str()),
        "the execution is recognised by its original window"
    );
    assert_eq!(
        client.status(&request, &id).await.expect("status"),
        RequestStatus::Ready
    );
    assert_eq!(client.documents(&request, &id).await.expect("documents").len(), 1);
    // GetWorkflowResponse wraps the workflow; the client answers the workflow itself.
    let scope = AmcScope {
        instance_id: "amcdemo01".into(),
        advertiser_id: "ENTITY1AA1AA11AAA1".into(),
        marketplace_id: "ATVPDKIKX0DER".into(),
    };
    let workflow = client.workflow(&scope, "weekly_reach").await.expect("workflow");
    assert_eq!(workflow["workflowId"], "weekly_reach");
}

#[tokio::test]
async fn the_simulators_amc_answers_have_the_published_shapes() {
    let corpus = Schemas::corpus("amc_reporting.json");
    for wrapped in [false, true] {
        let sim = Simulator::start(SimConfig {
            amc_wrapped: wrapped,
            ..SimConfig::default()
        })
        .await
        .expect("sim");
        let token = sim_token(&sim).await;
        let mut bearer = String::new();
        let headers = amc_headers(&token, &mut bearer);
        let root = format!("{}/amc/reporting/amcdemo01", sim.base_url());
        let (_, mut body) = corpus.example("an ad-hoc execution over an explicit window in New York time");
        body["timeWindowStart"] = json!(day(-3).format("%Y-%m-%dT%H:%M:%S").to_string());
        body["timeWindowEnd"] = json!(day(-2).format("%Y-%m-%dT%H:%M:%S").to_string());
        let execution_schema = if wrapped {
            "GetWorkflowExecutionResponse"
        } else {
            "WorkflowExecution"
        };
        let (status, created) = call(
            Method::POST,
            &format!("{root}/workflowExecutions"),
            &headers,
            Some(&body),
        )
        .await;
        assert!(status == 200 || status == 201, "{status}");
        corpus.assert_valid(execution_schema, &created, "the simulator's create answer");
        let execution = created.get("workflowExecution").unwrap_or(&created);
        let id = execution["workflowExecutionId"].as_str().expect("id").to_owned();
        assert_eq!(execution["timeWindowStartOriginal"], body["timeWindowStart"]);
        let (status, early) = call(
            Method::GET,
            &format!("{root}/workflowExecutions/{id}/downloadUrls"),
            &headers,
            None,
        )
        .await;
        assert_eq!(status, 400);
        corpus.assert_valid("Error", &early, "the simulator's not-ready answer");
        for _ in 0..4 {
            let (status, answer) = call(Method::GET, &format!("{root}/workflowExecutions/{id}"), &headers, None).await;
            assert_eq!(status, 200);
            corpus.assert_valid(execution_schema, &answer, "the simulator's execution");
        }
        let (status, urls) = call(
            Method::GET,
            &format!("{root}/workflowExecutions/{id}/downloadUrls"),
            &headers,
            None,
        )
        .await;
        assert_eq!(status, 200);
        corpus.assert_valid("DownloadUrlsResponse", &urls, "the simulator's download URLs");
        let (status, list) = call(
            Method::GET,
            &format!("{root}/workflowExecutions?minCreationTime=2020-01-01T00:00:00"),
            &headers,
            None,
        )
        .await;
        assert_eq!(status, 200);
        corpus.assert_valid(
            "ListWorkflowExecutionsResponse",
            &list,
            "the simulator's execution list",
        );
    }
    // Saved workflows: GetWorkflowResponse wraps the workflow.
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let token = sim_token(&sim).await;
    let mut bearer = String::new();
    let headers = amc_headers(&token, &mut bearer);
    let root = format!("{}/amc/reporting/amcdemo01", sim.base_url());
    let workflow = json!({"workflowId": "weekly_reach", "sqlQuery": "SELECT 1"});
    let (status, _) = call(Method::POST, &format!("{root}/workflows"), &headers, Some(&workflow)).await;
    assert_eq!(status, 200);
    let (status, answer) = call(Method::GET, &format!("{root}/workflows/weekly_reach"), &headers, None).await;
    assert_eq!(status, 200);
    corpus.assert_valid("GetWorkflowResponse", &answer, "the simulator's workflow");
}

// Slate.

#[tokio::test]
async fn slate_requests_and_the_simulators_pages_follow_the_official_page() {
    let corpus = Schemas::corpus("slate_datasets.json");
    let paths: Vec<&str> = corpus.doc["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().expect("path"))
        .collect();
    let query_schema = jsonschema::draft7::new(&corpus.doc["query"]).expect("query schema");
    let sim = Simulator::start(SimConfig {
        slate_page_max: 1,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = SlateClient::new(api(&sim, AuthStyle::Bearer), sim.slate_url());
    let accounts = client.accounts().await.expect("accounts");
    let groups = client.groups(&accounts[0].id).await.expect("groups");
    let businesses = client
        .businesses(&accounts[0].id, &groups[0].id)
        .await
        .expect("businesses");
    client
        .datasets(&accounts[0].id, &groups[0].id, &businesses[0].id)
        .await
        .expect("datasets");
    let request = SlateRequest {
        account_id: "acct-1".into(),
        group_id: "grp-1".into(),
        business_id: "biz-1".into(),
        dataset_id: "playback".into(),
        after: None,
        changelog_key: None,
    };
    let documents = client
        .documents(
            &request,
            &client.create(&request, &window(-2, -1)).await.expect("create"),
        )
        .await
        .expect("files");
    assert!(!documents.is_empty());

    let token = sim_token(&sim).await;
    let bearer = format!("Bearer {token}");
    let mut seen = 0;
    for logged in sim.requests().into_iter().filter(|r| r.path.starts_with("/apis/")) {
        let (path, query) = split_query(&logged.path);
        let path = path.trim_start_matches("/apis");
        assert!(paths.iter().any(|t| fits(t, path)), "{path} is not a documented path");
        let query: serde_json::Map<String, Value> = query.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let query = Value::Object(query);
        let problems: Vec<String> = query_schema.iter_errors(&query).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{}: {problems:?}", logged.path);
        // The simulator answers every page with the documented envelope.
        let (status, page) = call(
            Method::GET,
            &format!("{}{}", sim.base_url(), logged.path),
            &[("authorization", bearer.as_str())],
            None,
        )
        .await;
        assert_eq!(status, 200);
        corpus.assert_valid("Page", &page, &format!("the simulator's page of {path}"));
        seen += 1;
    }
    assert!(seen >= 5, "every list was asked for");
    // A page larger than the documented maximum is refused.
    let url = format!(
        "{}/v2/accounts/acct-1/grp-1/biz-1/datasets/playback?startDateTime=2026-01-01T00:00:00Z&endDateTime=2026-01-02T00:00:00Z&limit=1001",
        sim.slate_url()
    );
    let (status, _) = call(Method::GET, &url, &[("authorization", bearer.as_str())], None).await;
    assert_eq!(status, 400, "limit is at most 1000 links per page");
}

// Login with Amazon.

#[tokio::test]
async fn lwa_refresh_requests_and_answers_follow_the_published_shapes() {
    let corpus = Schemas::corpus("lwa.json");
    let (_, granted) = corpus.example("a refreshed token");
    let (_, revoked) = corpus.example("a revoked refresh token");
    corpus.assert_valid("TokenResponse", &granted, "the published token answer");
    corpus.assert_valid("Error", &revoked, "the published error");

    // The client posts the documented form, and reads the published answer.
    let replay = Replay::start(vec![Route::new(Method::POST, "/auth/o2/token", 200, granted)])
        .await
        .expect("replay");
    let http = api_http_client(&policy()).expect("http");
    let grant = LwaClient::new(http.clone(), format!("{}/auth/o2/token", replay.base_url()))
        .refresh(&credentials())
        .await
        .expect("refresh");
    assert_eq!(grant.access.token.expose_secret(), "Atza|example-access-token");
    assert!(
        grant.rotated_refresh_token.is_some(),
        "a different refresh token is a rotation"
    );
    let received = replay.received();
    assert!(
        received[0]
            .headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")),
        "{:?}",
        received[0].headers
    );
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&received[0].body).expect("a form");
    corpus.assert_valid("RefreshRequest", &json!(form), "the client's refresh form");

    let replay = Replay::start(vec![Route::new(Method::POST, "/auth/o2/token", 400, revoked)])
        .await
        .expect("replay");
    let err = LwaClient::new(http, format!("{}/auth/o2/token", replay.base_url()))
        .refresh(&credentials())
        .await
        .expect_err("revoked");
    assert!(matches!(err, LwaError::InvalidGrant { .. }), "{err:?}");

    // The simulator's LWA answers the same shapes.
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "Atzr|sim-refresh-token"),
        ("client_id", "amzn1.application-oa2-client.sim"),
        ("client_secret", "sim-client-secret"),
    ];
    let answer: Value = reqwest::Client::new()
        .post(sim.token_url())
        .form(&form)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    corpus.assert_valid("TokenResponse", &answer, "the simulator's token answer");
    sim.revoke_refresh_tokens();
    let response = reqwest::Client::new()
        .post(sim.token_url())
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("json");
    corpus.assert_valid("Error", &answer, "the simulator's refusal");
}

/// The Tokens API use case guide's restricted report types, as the corpus holds them.
fn restricted_report_types() -> Vec<String> {
    load("restricted_report_types.json")["restrictedReportTypes"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t.as_str().expect("a name").to_owned())
        .collect()
}

#[test]
fn the_client_asks_a_restricted_data_token_for_exactly_the_report_types_the_tokens_guide_lists() {
    // Source: developer-docs.amazon.com/sp-api/docs/tokens-api-use-case-guide (16 restricted types),
    // as tests/contract/restricted_report_types.json transcribes it.
    let listed = restricted_report_types();
    assert_eq!(listed.len(), 16);
    let mut client: Vec<&str> = amzpipe::domain::source::sp_reports::restricted_report_types().collect();
    let mut guide: Vec<&str> = listed.iter().map(String::as_str).collect();
    client.sort_unstable();
    guide.sort_unstable();
    assert_eq!(client, guide);
}

#[tokio::test]
async fn the_simulator_takes_every_restricted_report_type_and_serves_its_document_only_with_a_restricted_data_token() {
    // GIVEN the simulator and each type of the guide's list, SC_VAT_TAX_REPORT (no GET_ prefix) among them
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let token = sim_token(&sim).await;
    let base = sim.base_url().to_owned();
    let auth = [("x-amz-access-token", token.as_str())];
    for report_type in ["SC_VAT_TAX_REPORT", "GET_GST_MTR_B2B_CUSTOM"] {
        // WHEN a report of it is made and its document asked for with the ordinary token
        let create = json!({"reportType": report_type, "dataStartTime": iso(day(-2)), "dataEndTime": iso(day(-1)),
            "marketplaceIds": ["ATVPDKIKX0DER"]});
        let (status, answer) = call(
            Method::POST,
            &format!("{base}/reports/2021-06-30/reports"),
            &auth,
            Some(&create),
        )
        .await;
        assert_eq!(status, 202, "{report_type}: {answer}");
        let id = answer["reportId"].as_str().expect("reportId");
        let mut document = None;
        for _ in 0..5 {
            let (_, report) = call(
                Method::GET,
                &format!("{base}/reports/2021-06-30/reports/{id}"),
                &auth,
                None,
            )
            .await;
            if let Some(d) = report["reportDocumentId"].as_str() {
                document = Some(d.to_owned());
                break;
            }
        }
        let path = format!(
            "/reports/2021-06-30/documents/{}",
            document.expect("the report finishes")
        );
        let (status, _) = call(Method::GET, &format!("{base}{path}"), &auth, None).await;
        // THEN it is refused, and served with a Restricted Data Token for that document
        assert_eq!(status, 403, "{report_type}");
        let body = json!({"restrictedResources": [{"method": "GET", "path": path}]});
        let (_, rdt) = call(
            Method::POST,
            &format!("{base}/tokens/2021-03-01/restrictedDataToken"),
            &auth,
            Some(&body),
        )
        .await;
        let rdt = rdt["restrictedDataToken"].as_str().expect("an RDT").to_owned();
        let (status, _) = call(
            Method::GET,
            &format!("{base}{path}"),
            &[("x-amz-access-token", rdt.as_str())],
            None,
        )
        .await;
        assert_eq!(status, 200, "{report_type}");
    }
}

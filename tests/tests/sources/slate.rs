//! Prime Video Slate: paginated file lists, watermarks, empty windows.

use super::*;

#[tokio::test]
async fn slate_lists_every_page_and_the_watermark_continues_without_gap_or_overlap() {
    let sim = Simulator::start(SimConfig {
        slate_files_per_day: 24,
        slate_rows: 10,
        slate_page_max: 50,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let client = SlateClient::new(api(&sim, AuthStyle::Bearer), sim.slate_url());
    assert_eq!(client.accounts().await.expect("accounts").len(), 2);
    assert_eq!(
        client
            .datasets("acct-1", "grp-1", "biz-1")
            .await
            .expect("datasets")
            .len(),
        2
    );
    let request = SlateRequest {
        account_id: "acct-1".into(),
        group_id: "grp-1".into(),
        business_id: "biz-1".into(),
        dataset_id: "playback".into(),
        after: None,
        changelog_key: None,
    };
    let first_window = window(-7, -2);
    let id = client.create(&request, &first_window).await.expect("create");
    assert_eq!(
        client.status(&request, &id).await.expect("status"),
        RequestStatus::Ready
    );
    let first = client.documents(&request, &id).await.expect("documents");
    assert_eq!(first.len(), 5 * 24, "every page followed");
    assert!(sim.requests_of("slate.files").len() >= 2, "more than one page");

    // The next run starts from the watermark and fetches only newer files.
    let mark = watermark(&first).expect("watermark");
    let next = SlateRequest {
        after: Some(mark),
        ..request.clone()
    };
    let second_window = window(-3, -1);
    let id = client.create(&next, &second_window).await.expect("create");
    let second = client.documents(&next, &id).await.expect("documents");
    assert_eq!(second.len(), 24, "the day after the first window, no file twice");
    assert!(second.iter().all(|d| d.produced_at.is_some_and(|t| t > mark)));

    let stored = store(second.into_iter().take(2).collect()).await;
    assert_eq!(stored.len(), 2, "one object per ZIP entry");
    assert!(
        stored
            .iter()
            .all(|(k, _, rows)| k.ends_with(".csv") && *rows == Some(10)),
        "{stored:?}"
    );
}

#[tokio::test]
async fn slate_windows_without_files_have_no_data() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = SlateClient::new(api(&sim, AuthStyle::Bearer), sim.slate_url());
    let request = SlateRequest {
        account_id: "acct-1".into(),
        group_id: "grp-1".into(),
        business_id: "biz-1".into(),
        dataset_id: "subscription".into(),
        after: None,
        changelog_key: None,
    };
    let future = window(2, 3);
    let id = client.create(&request, &future).await.expect("create");
    assert!(matches!(
        client.status(&request, &id).await.expect("status"),
        RequestStatus::NoData { .. }
    ));
}

#[tokio::test]
async fn slate_is_asked_on_the_paths_and_with_the_parameters_of_its_official_page() {
    // Source: the Datasets API's official page (seed 002_8fd61206bc5c2333.txt): /v2/accounts,
    // /v2/accounts/{account_id}, /v2/accounts/{account_id}/{group_id},
    // …/{business_id}/datasets, …/datasets/{dataset_id} with startDateTime/endDateTime as
    // YYYY-MM-DDTHH:MM:SSZ and limit ≤ 1000; incremental runs start at the last timestamp + 1 s.
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let client = SlateClient::new(api(&sim, AuthStyle::Bearer), sim.slate_url());
    client.groups("acct-1").await.expect("groups");
    client.businesses("acct-1", "grp-1").await.expect("businesses");
    client.datasets("acct-1", "grp-1", "biz-1").await.expect("datasets");
    let mark = DateTime::parse_from_rfc3339("2026-11-20T06:00:00Z")
        .expect("time")
        .to_utc();
    let request = SlateRequest {
        account_id: "acct-1".into(),
        group_id: "grp-1".into(),
        business_id: "biz-1".into(),
        dataset_id: "playback".into(),
        after: Some(mark),
        changelog_key: None,
    };
    let w = TimeWindow::new(mark - Days::days(1), mark + Days::days(1)).expect("window");
    client.files(&request, &w).await.expect("files");
    let path = |op: &str| sim.requests_of(op).first().map(|r| r.path.clone()).expect("a request");
    assert!(
        path("slate.groups").starts_with("/apis/v2/accounts/acct-1?"),
        "{}",
        path("slate.groups")
    );
    assert!(path("slate.businesses").starts_with("/apis/v2/accounts/acct-1/grp-1?"));
    assert!(path("slate.datasets").starts_with("/apis/v2/accounts/acct-1/grp-1/biz-1/datasets?"));
    let files = path("slate.files");
    assert!(
        files.starts_with("/apis/v2/accounts/acct-1/grp-1/biz-1/datasets/playback?"),
        "{files}"
    );
    assert!(
        files.contains("startDateTime=2026-11-20T06%3A00%3A01Z"),
        "the watermark + 1 s: {files}"
    );
    assert!(files.contains("limit=1000"), "{files}");
}

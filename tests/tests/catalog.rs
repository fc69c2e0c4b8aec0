//! Query-ready output: each run's data is a table in the Glue Data Catalog (moto's), queryable at
//! once. The tables are read back from the catalog and queried with a real SQL engine (DuckDB, through
//! `tests/sql/athena_local.py`), which builds each table from the catalog alone — its columns, SerDe,
//! header skipping and partition projection — as Athena does; none of the pipeline's own knowledge.

use amzpipe_testkit::sfn::{MAP_RUN_RESULTS, STAGED_JOBS};
use amzpipe_testkit::sim::SimConfig;
use amzpipe_testkit::sql::Answer;
use amzpipe_testkit::stack::{BUCKET, GLUE_DATABASE, Pipeline, event_job};
use serde_json::{Value, json};

/// Runs `sql` over the catalog's tables with the local SQL engine.
fn query(p: &Pipeline, sql: &[&str]) -> Vec<Answer> {
    amzpipe_testkit::sql::query(p.aws.endpoint(), GLUE_DATABASE, sql).expect("the SQL engine")
}

/// The manifests of the runs, by job.
async fn manifests(p: &Pipeline) -> Vec<Value> {
    let mut out = Vec::new();
    for (key, _) in p.aws.objects(BUCKET).await.expect("objects") {
        if key.ends_with("/_manifest.json") && !key.starts_with(MAP_RUN_RESULTS) && !key.starts_with(STAGED_JOBS) {
            let bytes = p.aws.object_bytes(BUCKET, &key).await.expect("manifest");
            out.push(serde_json::from_slice(&bytes).expect("a manifest"));
        }
    }
    out
}

fn rows_of(manifests: &[Value], table: &str) -> u64 {
    manifests
        .iter()
        .filter(|m| m["table"]["table"] == table)
        .map(|m| m["totals"]["rows"].as_u64().expect("rows"))
        .sum()
}

#[tokio::test]
async fn every_sources_run_is_a_table_that_sql_reads_as_soon_as_its_manifest_is_written() {
    // GIVEN one execution with a job of every source
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let jobs: Vec<Value> = ["sp-reports", "ads-reports", "amc", "slate"].map(event_job).to_vec();
    let execution = p
        .execute("all", "2026-11-23T06:00:00Z", &jobs)
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);

    // THEN each manifest names its table, made by the run
    let manifests = manifests(&p).await;
    assert_eq!(manifests.len(), 4);
    let tables = [
        "sp_reports_get_flat_file_all_orders_data_by_order_date_general",
        "ads_reports_spcampaigns",
        "amc_adhoc",
        "slate_playback",
    ];
    for table in tables {
        let manifest = manifests.iter().find(|m| m["table"]["table"] == table);
        let manifest = manifest.unwrap_or_else(|| panic!("a manifest names {table}: {manifests:#?}"));
        assert_eq!(manifest["table"]["database"], GLUE_DATABASE);
        assert_eq!(manifest["table"]["schema"]["change"], "created");
    }

    // AND a real SQL engine reading the catalog alone counts exactly the rows the manifests count
    let sql: Vec<String> = tables.iter().map(|t| format!("SELECT count(*) FROM {t}")).collect();
    let answers = query(&p, &sql.iter().map(String::as_str).collect::<Vec<_>>());
    for (answer, table) in answers.iter().zip(tables) {
        let expected = rows_of(&manifests, table);
        assert!(expected > 0, "{table} has rows");
        assert_eq!(answer.count(), Some(expected), "{table}: {answer:?}");
    }

    // AND the columns are the data's, by name: an Ads row's values are where their names say
    let ads = query(
        &p,
        &["SELECT campaignid, clicks, account, dt FROM ads_reports_spcampaigns WHERE clicks IS NOT NULL LIMIT 1"],
    );
    let row = &ads[0].rows[0];
    assert!(
        row[1].as_deref().is_some_and(|c| c.parse::<u64>().is_ok()),
        "clicks is a number: {row:?}"
    );
    assert_eq!(row[2].as_deref(), Some("1234567890"));
    assert_eq!(row[3].as_deref(), Some("2026-11-22"));
    // AND a TSV column by position: the sales channel, seventh of nineteen, holds what it should
    // (the simulator's report cuts its last row to fit its size)
    let sp_table = "sp_reports_get_flat_file_all_orders_data_by_order_date_general";
    let sp = query(
        &p,
        &[&format!(
            "SELECT count(*) FILTER (WHERE sales_channel = 'Amazon.com'), count(*) FROM {sp_table}"
        )],
    );
    let row = &sp[0].rows[0];
    let number = |v: &Option<String>| -> u64 { v.as_deref().and_then(|v| v.parse().ok()).expect("a count") };
    let (aligned, all) = (number(&row[0]), number(&row[1]));
    assert!(aligned + 1 >= all && all > 1, "no row is misaligned: {sp:?}");
}

#[tokio::test]
async fn a_query_across_two_days_counts_each_days_rows_and_a_new_column_reads_as_null_on_the_old_day() {
    // GIVEN the Ads job run for two days, the second with a column more
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let first = event_job("ads-reports");
    let execution = p
        .execute("day-1", "2026-11-23T06:00:00Z", std::slice::from_ref(&first))
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    let mut second = first;
    second["source"]["columns"]
        .as_array_mut()
        .expect("columns")
        .push(json!("purchases7d"));
    let execution = p
        .execute("day-2", "2026-11-24T06:00:00Z", &[second])
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);

    // THEN the second run added the column to the table (a new version), and said so
    let manifests = manifests(&p).await;
    let changes: Vec<&Value> = manifests.iter().map(|m| &m["table"]["schema"]).collect();
    assert!(changes.contains(&&json!({"change": "created"})), "{changes:?}");
    assert!(
        changes.contains(&&json!({"change": "added", "columns": ["purchases7d"]})),
        "{changes:?}"
    );

    // AND one query reads both days, each with its manifest's rows, the old day's new column null
    let answers = query(
        &p,
        &[
            "SELECT dt, count(*), count(purchases7d) FROM ads_reports_spcampaigns GROUP BY dt ORDER BY dt",
            "SELECT count(*) FROM ads_reports_spcampaigns WHERE dt BETWEEN '2026-11-22' AND '2026-11-23'",
        ],
    );
    let by_day = &answers[0].rows;
    let rows = |day: &str| -> u64 {
        manifests
            .iter()
            .filter(|m| {
                m["documents"][0]["objects"][0]["key"]
                    .as_str()
                    .is_some_and(|k| k.contains(&format!("dt={day}")))
            })
            .map(|m| m["totals"]["rows"].as_u64().expect("rows"))
            .sum()
    };
    let text = |day: &str, n: u64, new: u64| vec![Some(day.to_owned()), Some(n.to_string()), Some(new.to_string())];
    let (old, new) = (rows("2026-11-22"), rows("2026-11-23"));
    assert_eq!(
        by_day,
        &[text("2026-11-22", old, 0), text("2026-11-23", new, new)],
        "{answers:?}"
    );
    assert_eq!(answers[1].count(), Some(old + new));
}

#[tokio::test]
async fn a_slate_changelog_has_a_view_of_its_current_state_one_row_per_session_deleted_ones_left_out() {
    // GIVEN the playback dataset over a day of hourly files: each file restates the same sessions,
    // later ones with more seconds viewed, and the files of odd hours delete every 50th session
    let p = Pipeline::start(
        SimConfig {
            slate_files_per_day: 4,
            ..SimConfig::default()
        },
        4,
    )
    .await
    .expect("pipeline");
    let execution = p
        .execute("slate", "2026-11-23T06:00:00Z", &[event_job("slate")])
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);

    // THEN the table holds every row of every file, and the view one row per session: the latest,
    // unless the latest deletes it (the official page: the latest row by last_update_time_utc wins,
    // is_deleted = 1 removes)
    let answers = query(
        &p,
        &[
            "SELECT count(*) FROM slate_playback",
            "SELECT count(DISTINCT session_id) FROM slate_playback",
            "SELECT count(*), count(DISTINCT session_id) FROM slate_playback_current",
            "SELECT count(*) FROM slate_playback_current WHERE is_deleted = '1'",
            "SELECT max(last_update_time_utc) = min(last_update_time_utc) FROM slate_playback_current",
            "SELECT max(last_update_time_utc) FROM slate_playback",
        ],
    );
    let manifests = manifests(&p).await;
    let all = rows_of(&manifests, "slate_playback");
    assert_eq!(answers[0].count(), Some(all));
    let sessions = answers[1].count().expect("sessions");
    assert!(
        all > sessions,
        "the files restate sessions: {all} rows, {sessions} sessions"
    );
    let current = &answers[2].rows[0];
    assert_eq!(current[0], current[1], "one row per session");
    let live: u64 = current[0].as_deref().and_then(|v| v.parse().ok()).expect("a count");
    let latest_hour_deletes = answers[5].rows[0][0].as_deref().is_some_and(|t| {
        t.get(11..13)
            .and_then(|h| h.parse::<u32>().ok())
            .is_some_and(|h| h % 2 == 1)
    });
    let deleted = if latest_hour_deletes { sessions.div_ceil(50) } else { 0 };
    assert_eq!(live, sessions - deleted, "{answers:?}");
    assert_eq!(answers[3].count(), Some(0), "no deleted row is current");
    assert_eq!(
        answers[4].rows[0][0].as_deref(),
        Some("True"),
        "every current row is the latest: {answers:?}"
    );
}

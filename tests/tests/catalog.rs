//! Query-ready output: each run's data is a table in the Glue Data Catalog (moto's), queryable at
//! once. The tables are read back from the catalog and queried with a real SQL engine (DuckDB, through
//! `tests/sql/athena_local.py`), which builds each table from the catalog alone — its columns, SerDe,
//! header skipping and partition projection — as Athena does; none of the pipeline's own knowledge.

use amzpipe_testkit::sim::SimConfig;
use amzpipe_testkit::stack::{GLUE_DATABASE, Pipeline, event_job};
use serde_json::{Value, json};

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
    let manifests = p.manifests().await;
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
    let answers = p.query(&sql.iter().map(String::as_str).collect::<Vec<_>>());
    for (answer, table) in answers.iter().zip(tables) {
        let expected = rows_of(&manifests, table);
        assert!(expected > 0, "{table} has rows");
        assert_eq!(answer.count(), Some(expected), "{table}: {answer:?}");
    }

    // AND the columns are the data's, by name: an Ads row's values are where their names say
    let ads = p.query(&[
        "SELECT campaignid, clicks, account, dt FROM ads_reports_spcampaigns WHERE clicks IS NOT NULL LIMIT 1",
    ]);
    let row = &ads[0].rows[0];
    assert!(
        row[1].as_deref().is_some_and(|c| c.parse::<u64>().is_ok()),
        "clicks is a number: {row:?}"
    );
    assert_eq!(row[2].as_deref(), Some("1234567890"));
    assert_eq!(row[3].as_deref(), Some("2026-11-22"));
    // AND a TSV column by position: the sales channel, seventh of nineteen, holds what it should
    let sp_table = "sp_reports_get_flat_file_all_orders_data_by_order_date_general";
    let sp = p.query(&[&format!(
        "SELECT count(*) FILTER (WHERE sales_channel = 'Amazon.com'), count(*) FROM {sp_table}"
    )]);
    let row = &sp[0].rows[0];
    let number = |v: &Option<String>| -> u64 { v.as_deref().and_then(|v| v.parse().ok()).expect("a count") };
    let (aligned, all) = (number(&row[0]), number(&row[1]));
    assert!(all > 1 && aligned == all, "no row is misaligned: {sp:?}");
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
    let manifests = p.manifests().await;
    let changes: Vec<&Value> = manifests.iter().map(|m| &m["table"]["schema"]).collect();
    assert!(changes.contains(&&json!({"change": "created"})), "{changes:?}");
    assert!(
        changes.contains(&&json!({"change": "added", "columns": ["purchases7d"]})),
        "{changes:?}"
    );

    // AND one query reads both days, each with its manifest's rows, the old day's new column null
    let answers = p.query(&[
        "SELECT dt, count(*), count(purchases7d) FROM ads_reports_spcampaigns GROUP BY dt ORDER BY dt",
        "SELECT count(*) FROM ads_reports_spcampaigns WHERE dt BETWEEN '2026-11-22' AND '2026-11-23'",
    ]);
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
    let answers = p.query(&[
        "SELECT count(*) FROM slate_playback",
        "SELECT count(DISTINCT session_id) FROM slate_playback",
        "SELECT count(*), count(DISTINCT session_id) FROM slate_playback_current",
        "SELECT count(*) FROM slate_playback_current WHERE is_deleted = '1'",
        "SELECT max(last_update_time_utc) = min(last_update_time_utc) FROM slate_playback_current",
        "SELECT max(last_update_time_utc) FROM slate_playback",
    ]);
    let manifests = p.manifests().await;
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

#[tokio::test]
async fn a_changelogs_view_is_written_once_and_not_again_by_each_run_that_finds_it_unchanged() {
    // GIVEN the playback dataset run for two days
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    for (name, at) in [("day-1", "2026-11-23T06:00:00Z"), ("day-2", "2026-11-24T06:00:00Z")] {
        let execution = p.execute(name, at, &[event_job("slate")]).await.expect("execution");
        assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    }

    // THEN its current-state view has one version in the catalog: the second run left it as it was
    let glue = aws_sdk_glue::Client::new(&p.aws.sdk_config().await);
    let versions = glue
        .get_table_versions()
        .database_name(GLUE_DATABASE)
        .table_name("slate_playback_current")
        .send()
        .await
        .expect("the view's versions");
    assert_eq!(versions.table_versions().len(), 1, "{versions:?}");
}

#[tokio::test]
async fn a_report_whose_columns_moved_went_and_came_is_stored_in_its_tables_order_and_reads_correctly() {
    // GIVEN the orders report run for a day, then for the next day with its first two columns swapped,
    // one column gone and a new one inserted mid-row (the simulator's DRIFTED report)
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let job = event_job("sp-reports");
    let first = p
        .execute("day-1", "2026-11-23T06:00:00Z", std::slice::from_ref(&job))
        .await
        .expect("execution");
    assert_eq!(first.status, "SUCCEEDED", "{:#}", first.output);
    let table = "sp_reports_get_flat_file_all_orders_data_by_order_date_general";
    let before = p.query(&[&format!(
        "SELECT count(*), count(DISTINCT ship_country), min(amazon_order_id) FROM {table}"
    )]);
    p.sim.set_scenario(amzpipe_testkit::sim::Scenario::with_outcome(
        "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        "DRIFTED",
    ));
    let second = p
        .execute("day-2", "2026-11-24T06:00:00Z", &[job])
        .await
        .expect("execution");
    assert_eq!(second.status, "SUCCEEDED", "the data is stored: {:#}", second.output);

    // THEN the second run's manifest and run record say how its columns drifted, and that its file
    // was stored in the table's order
    let manifests = p.manifests().await;
    let drifted = manifests
        .iter()
        .find(|m| m["table"]["schema"]["change"] == "drifted")
        .unwrap_or_else(|| panic!("a drifted run: {manifests:#?}"));
    assert_eq!(
        drifted["table"]["schema"],
        json!({"change": "drifted", "missing": ["ship-country"], "extra": ["is-business-order"],
               "reordered": true, "format_changed": false, "conformed": true})
    );
    let run_id = drifted["context"]["run_id"].as_str().expect("its run");
    let runs = p.services.store.runs_of("sp-orders-daily").await.expect("runs");
    let run = runs.iter().find(|r| r.run_id == run_id).expect("the run");
    assert!(
        run.schema_note
            .as_deref()
            .is_some_and(|n| n.contains("reordered: true")),
        "{:?}",
        run.schema_note
    );

    // AND the table keeps its columns in their places and gains the new one at its end
    let glue = aws_sdk_glue::Client::new(&p.aws.sdk_config().await);
    let columns: Vec<String> = glue
        .get_table()
        .database_name(GLUE_DATABASE)
        .name(table)
        .send()
        .await
        .expect("the table")
        .table()
        .and_then(|t| t.storage_descriptor())
        .map(|s| s.columns().iter().map(|c| c.name().to_owned()).collect())
        .unwrap_or_default();
    assert_eq!(&columns[..2], ["amazon_order_id", "merchant_order_id"]);
    assert_eq!(
        columns.iter().rev().take(2).collect::<Vec<_>>(),
        ["is_business_order", "ship_country"]
    );

    // AND SQL reads both days correctly: the first as before (the new column null), the drifted day's
    // values under their own names (the simulator's DRIFTED rows), its gone column empty
    let answers = p.query(&[
        &format!(
            "SELECT count(*), count(DISTINCT ship_country), min(amazon_order_id) FROM {table} \
                 WHERE dt = '2026-11-22'"
        ),
        &format!("SELECT count(*) FROM {table} WHERE dt = '2026-11-22' AND is_business_order IS NOT NULL"),
        &format!(
            "SELECT amazon_order_id, merchant_order_id, sku, quantity, ship_postal_code, \
                 coalesce(ship_country, ''), is_business_order FROM {table} WHERE dt = '2026-11-23' \
                 ORDER BY amazon_order_id"
        ),
    ]);
    assert_eq!(answers[0].rows, before[0].rows, "the first day reads as it did");
    assert_eq!(answers[1].count(), Some(0), "the new column is null on the first day");
    let row = |values: [&str; 7]| values.map(|v| Some(v.to_owned())).to_vec();
    assert_eq!(
        answers[2].rows,
        [
            row(["111-0000001-0000001", "MO-1", "SKU-00001", "1", "98101", "", "false"]),
            row(["111-0000002-0000002", "MO-2", "SKU-00002", "2", "97201", "", "true"]),
        ]
    );
}

#[tokio::test]
async fn jobs_stored_as_parquet_are_typed_tables_whose_rows_are_the_manifests_and_no_row_is_dropped() {
    // GIVEN one execution of the SP-API, Ads and Slate jobs, each asking for Parquet
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let jobs: Vec<Value> = ["sp-reports", "ads-reports", "slate"]
        .map(|name| {
            let mut job = event_job(name);
            job["output"] = json!({"format": "parquet"});
            job
        })
        .to_vec();
    let execution = p
        .execute("parquet", "2026-11-23T06:00:00Z", &jobs)
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);

    // THEN every object is a Parquet file, and every row the text held is a row of the table
    let manifests = p.manifests().await;
    assert_eq!(manifests.len(), 3);
    let objects: Vec<&Value> = manifests
        .iter()
        .flat_map(|m| m["documents"].as_array().into_iter().flatten())
        .flat_map(|d| d["objects"].as_array().into_iter().flatten())
        .collect();
    assert!(
        objects
            .iter()
            .all(|o| o["key"].as_str().is_some_and(|k| k.ends_with(".parquet"))
                && o["content_type"] == "application/vnd.apache.parquet"),
        "{objects:#?}"
    );
    let sp = "sp_reports_get_flat_file_all_orders_data_by_order_date_general";
    let answers = p.query(&[
        &format!("SELECT count(*) FROM {sp}"),
        "SELECT count(*) FROM ads_reports_spcampaigns",
        "SELECT count(*) FROM slate_playback",
        &format!("SELECT typeof(item_price), typeof(quantity), typeof(purchase_date), typeof(sku) FROM {sp} LIMIT 1"),
        "SELECT typeof(date), typeof(clicks), typeof(cost), typeof(campaignid) FROM ads_reports_spcampaigns LIMIT 1",
        &format!("SELECT sum(item_price) > 0, count(*) FILTER (WHERE sales_channel = 'Amazon.com') FROM {sp}"),
        "SELECT count(*) FROM slate_playback_current",
    ]);
    for (i, table) in [sp, "ads_reports_spcampaigns", "slate_playback"].iter().enumerate() {
        assert_eq!(answers[i].count(), Some(rows_of(&manifests, table)), "{table}");
    }
    let types = |i: usize| -> Vec<String> { answers[i].rows[0].iter().flatten().cloned().collect() };
    assert_eq!(types(3), ["DOUBLE", "BIGINT", "TIMESTAMP", "VARCHAR"]);
    assert_eq!(types(4), ["DATE", "BIGINT", "DOUBLE", "VARCHAR"]);
    assert_eq!(answers[5].rows[0][0].as_deref(), Some("True"), "amounts are numbers");
    // The simulator's SP report holds no bad value (its typed columns' bad values are tested in
    // `columnar`): none is counted, and every row is kept.
    let bad: u64 = objects.iter().filter_map(|o| o["bad_values"].as_u64()).sum();
    assert_eq!(bad, 0, "bad values counted: {bad}");
    let aligned: u64 = answers[5].rows[0][1]
        .as_deref()
        .and_then(|v| v.parse().ok())
        .expect("a count");
    assert_eq!(aligned, rows_of(&manifests, sp));
    assert!(
        answers[6].count().is_some_and(|n| n > 0),
        "the Slate view reads Parquet too"
    );
}

#[tokio::test]
async fn an_amc_query_stored_as_parquet_has_the_column_types_its_job_declares() {
    // GIVEN the AMC job asking for Parquet, declaring the types its SQL computes (AMC's CSV carries
    // none): impressions and reach are whole numbers
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let mut job = event_job("amc");
    job["output"] = json!({"format": "parquet", "columnTypes": {"impressions": "bigint", "reach": "bigint"}});
    let execution = p
        .execute("amc", "2026-11-23T06:00:00Z", &[job])
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);

    // THEN its table types them so, the other columns strings, and holds the manifest's rows
    let manifests = p.manifests().await;
    let answers = p.query(&[
        "SELECT typeof(impressions), typeof(reach), typeof(campaign) FROM amc_adhoc LIMIT 1",
        "SELECT count(*) FROM amc_adhoc",
        "SELECT count(*) FROM amc_adhoc WHERE reach IS NULL OR impressions IS NULL",
    ]);
    let types: Vec<String> = answers[0].rows[0].iter().flatten().cloned().collect();
    assert_eq!(types, ["BIGINT", "BIGINT", "VARCHAR"]);
    assert_eq!(answers[1].count(), Some(rows_of(&manifests, "amc_adhoc")));
    assert_eq!(answers[2].count(), Some(0), "every value parsed");
}

#[tokio::test]
async fn a_report_kept_gzip_compressed_is_a_table_that_reads_its_rows_in_their_columns() {
    // GIVEN the orders report stored as Amazon's gzip stream, not decompressed
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let mut job = event_job("sp-reports");
    job["output"] = json!({"keepCompressed": true});
    let execution = p
        .execute("kept", "2026-11-23T06:00:00Z", &[job])
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);

    // THEN the object is `….tsv.gz`, its table took the columns of its inflated header, and SQL reads
    // every row with its values in their columns
    let manifests = p.manifests().await;
    let object = &manifests[0]["documents"][0]["objects"][0];
    assert!(
        object["key"].as_str().is_some_and(|k| k.ends_with(".tsv.gz")),
        "{object:#}"
    );
    let table = "sp_reports_get_flat_file_all_orders_data_by_order_date_general";
    assert_eq!(manifests[0]["table"]["table"], table);
    let answers = p.query(&[
        &format!("SELECT count(*) FROM {table}"),
        &format!("SELECT count(*) FROM {table} WHERE sales_channel = 'Amazon.com' AND currency = 'USD'"),
    ]);
    let rows = answers[0].count().expect("a count");
    assert!(rows > 1_000, "{rows} rows");
    // Every row reads aligned.
    assert_eq!(answers[1].count(), Some(rows), "{answers:?}");
}

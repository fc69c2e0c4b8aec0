//! One truth per data day: lookbacks, backfills and re-runs never double count in a query.
//!
//! Three daily runs with a lookback, a backfill over the same days and a re-run of one day, each
//! request answered with restated figures (the simulator: Ads metrics revised for days and
//! conversions restated at 1/7/28 days, the reference §3.2 notes; a report by order date holding the
//! orders of its window; an AMC execution's figures its own). Then a real SQL engine, reading the
//! catalog alone (`tests/sql/athena_local.py`, symlink tables as Athena reads them), must return each
//! day's rows once, those of the run requested last that covered the day, and the history table
//! every run's.

use std::collections::BTreeMap;

use amzpipe_testkit::sim::SimConfig;
use amzpipe_testkit::stack::{BUCKET, Pipeline, event_job};
use serde_json::{Value, json};

/// `job` with its window set to `window`.
fn with_window(mut job: Value, window: Value) -> Value {
    job["window"] = window;
    job
}

fn explicit(start: &str, end: &str) -> Value {
    json!({"rule": "explicit", "start": format!("{start}T00:00:00Z"), "end": format!("{end}T00:00:00Z")})
}

/// Runs `jobs` as one execution and checks that it succeeded.
async fn run(p: &Pipeline, name: &str, scheduled: &str, jobs: &[Value]) {
    let execution = p.execute(name, scheduled, jobs).await.expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{name}: {:#}", execution.output);
}

/// The manifest of `job`'s run over the window starting on `start`.
fn manifest<'a>(manifests: &'a [Value], job: &str, start: &str) -> &'a Value {
    manifests
        .iter()
        .find(|m| {
            m["context"]["job"] == job
                && m["context"]["window_start"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(start))
        })
        .unwrap_or_else(|| panic!("a manifest of {job} from {start}"))
}

/// The objects of a manifest that hold `day`'s rows (all of them for a run not split by day).
fn objects_of<'a>(manifest: &'a Value, day: Option<&str>) -> Vec<&'a Value> {
    manifest["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .flat_map(|d| d["objects"].as_array().expect("objects"))
        .filter(|o| day.is_none_or(|day| o["day"] == day))
        .collect()
}

/// Rows, and the sum of `column` over them, in the objects (JSON Lines, TSV or CSV with a header).
async fn figures(p: &Pipeline, objects: &[&Value], column: &str) -> (u64, f64) {
    let (mut rows, mut sum) = (0, 0.0);
    for object in objects {
        let key = object["key"].as_str().expect("a key");
        let bytes = p.aws.object_bytes(BUCKET, key).await.expect("the object");
        let text = String::from_utf8(bytes.to_vec()).expect("text");
        let value = |v: &str| v.trim_matches('"').parse::<f64>().expect("a number");
        if key.ends_with(".jsonl") {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let row: Value = serde_json::from_str(line).expect("a JSON row");
                rows += 1;
                sum += row[column].as_f64().expect("a number");
            }
        } else {
            let delimiter = if key.ends_with(".tsv") { '\t' } else { ',' };
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().expect("a header").split(delimiter).collect();
            let at = header.iter().position(|h| *h == column).expect("the column");
            for line in lines.filter(|l| !l.is_empty()) {
                rows += 1;
                sum += value(line.split(delimiter).nth(at).expect("the field"));
            }
        }
    }
    (rows, sum)
}

/// The current table's rows and sum of `column` per day, as SQL reads them.
fn per_day(p: &Pipeline, table: &str, column: &str) -> BTreeMap<String, (u64, f64)> {
    let sql = format!("SELECT dt, count(*), sum(CAST({column} AS DOUBLE)) FROM {table} GROUP BY dt ORDER BY dt");
    let answer = &p.query(&[&sql])[0];
    answer
        .rows
        .iter()
        .map(|row| {
            let text = |i: usize| row[i].clone().unwrap_or_default();
            (
                text(0),
                (text(1).parse().expect("a count"), text(2).parse().expect("a sum")),
            )
        })
        .collect()
}

fn rows_of(manifests: &[Value], job_prefix: &str) -> u64 {
    manifests
        .iter()
        .filter(|m| m["context"]["job"].as_str().is_some_and(|j| j.starts_with(job_prefix)))
        .map(|m| m["totals"]["rows"].as_u64().expect("rows"))
        .sum()
}

#[tokio::test]
async fn overlapping_runs_a_backfill_and_a_re_run_leave_each_days_rows_once_with_the_latest_values() {
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    // GIVEN daily Ads and SP-API jobs asking for yesterday and the two days before it, and a weekly
    // AMC query run daily: their windows overlap
    let lookback = json!({"rule": "yesterday", "lookbackDays": 2});
    let ads = with_window(event_job("ads-reports"), lookback.clone());
    let sp = with_window(event_job("sp-reports"), lookback);
    let amc = event_job("amc");
    for (name, scheduled) in [
        ("day-21", "2026-11-21T06:00:00Z"),
        ("day-22", "2026-11-22T06:00:00Z"),
        ("day-23", "2026-11-23T06:00:00Z"),
    ] {
        run(&p, name, scheduled, &[ads.clone(), sp.clone(), amc.clone()]).await;
    }
    // AND a backfill of 19–21 November (no lookback, windows of its own)
    let backfill = explicit("2026-11-19", "2026-11-22");
    let mut ads_backfill = with_window(ads.clone(), backfill.clone());
    ads_backfill["name"] = json!("ads-backfill");
    let mut sp_backfill = with_window(sp.clone(), backfill);
    sp_backfill["name"] = json!("sp-backfill");
    run(&p, "backfill", "2026-11-23T07:00:00Z", &[ads_backfill, sp_backfill]).await;
    // AND a re-run of 21 November, and of the first AMC window (another job over the same query)
    let one_day = explicit("2026-11-21", "2026-11-22");
    let mut ads_rerun = with_window(ads.clone(), one_day.clone());
    ads_rerun["name"] = json!("ads-rerun");
    let mut sp_rerun = with_window(sp.clone(), one_day);
    sp_rerun["name"] = json!("sp-rerun");
    // (AMC's windows end 48 hours before their firing: the weekly runs asked for 12–18, 13–19 and
    // 14–20 November.)
    let mut amc_rerun = with_window(amc.clone(), explicit("2026-11-12", "2026-11-19"));
    amc_rerun["name"] = json!("amc-rerun");
    run(&p, "re-run", "2026-11-23T08:00:00Z", &[ads_rerun, sp_rerun, amc_rerun]).await;

    let manifests = p.manifests().await;
    // The run requested last that covered each day: the windows were 18–20, 19–21 and 20–22
    // November, then the backfill 19–21, then the re-run of the 21st.
    let winners = [
        ("2026-11-18", "2026-11-18", ""),
        ("2026-11-19", "2026-11-19", "-backfill"),
        ("2026-11-20", "2026-11-19", "-backfill"),
        ("2026-11-21", "2026-11-21", "-rerun"),
        ("2026-11-22", "2026-11-20", ""),
    ];
    for (table, job, column) in [
        ("ads_reports_spcampaigns", "ads-sp-campaigns-daily", "clicks"),
        (
            "sp_reports_get_flat_file_all_orders_data_by_order_date_general",
            "sp-orders-daily",
            "item-price",
        ),
    ] {
        // THEN each day reads the rows and figures of its latest run's objects for that day, once
        let mut expected = BTreeMap::new();
        for (day, start, suffix) in winners {
            let name = if suffix.is_empty() {
                job.to_owned()
            } else {
                format!("{}{suffix}", job.split('-').next().expect("a prefix"))
            };
            let objects = objects_of(manifest(&manifests, &name, start), Some(day));
            assert!(!objects.is_empty(), "{name} stored rows of {day}");
            expected.insert(day.to_owned(), figures(&p, &objects, column).await);
        }
        let sql_column = column.replace('-', "_");
        let read = per_day(&p, table, &sql_column);
        assert_eq!(
            read.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{table}"
        );
        for (day, (rows, sum)) in &expected {
            let (read_rows, read_sum) = read[day];
            assert_eq!(read_rows, *rows, "{table} on {day}: the latest run's rows, once");
            assert!(
                (read_sum - sum).abs() < 1e-6,
                "{table} on {day}: the latest values ({read_sum} ≠ {sum})"
            );
        }
        // AND the values were restated: an earlier run's figures for a day differ from the latest's
        let earlier = objects_of(manifest(&manifests, job, "2026-11-19"), Some("2026-11-21"));
        let (_, earlier_sum) = figures(&p, &earlier, column).await;
        assert!(
            (earlier_sum - expected["2026-11-21"].1).abs() > 1e-6,
            "{table}: the re-run restated 21 November"
        );
        // AND the history table keeps every run's rows: every copy, for audit
        let prefix = job.split('-').next().expect("a prefix");
        let history = p.query(&[&format!("SELECT count(*) FROM {table}_history")]);
        assert_eq!(history[0].count(), Some(rows_of(&manifests, prefix)), "{table}_history");
        // AND no query through the table returns a row twice: the table holds what the days hold
        let total: u64 = expected.values().map(|(rows, _)| rows).sum();
        let count = p.query(&[&format!("SELECT count(*) FROM {table}")]);
        assert_eq!(count[0].count(), Some(total), "{table}");
        assert!(
            total < rows_of(&manifests, prefix),
            "{table}: the copies are not counted"
        );
    }

    // THEN AMC's unit is its window: each window's rows once, a re-run's in place of the first's
    let amc_read = per_day(&p, "amc_adhoc", "impressions");
    let mut amc_expected = BTreeMap::new();
    for (start, job) in [
        ("2026-11-12", "amc-rerun"),
        ("2026-11-13", "amc-weekly-reach"),
        ("2026-11-14", "amc-weekly-reach"),
    ] {
        let objects = objects_of(manifest(&manifests, job, start), None);
        amc_expected.insert(start.to_owned(), figures(&p, &objects, "impressions").await);
    }
    assert_eq!(amc_read.len(), 3, "{amc_read:?}");
    for (day, (rows, sum)) in &amc_expected {
        assert_eq!(amc_read[day].0, *rows, "amc_adhoc on {day}");
        assert!(
            (amc_read[day].1 - sum).abs() < 1e-6,
            "amc_adhoc on {day}: the re-run's figures"
        );
    }
}

#[tokio::test]
async fn an_hours_run_after_a_days_never_hides_the_rest_of_the_day() {
    // GIVEN the SP-API orders of 22 November, then a later run of one hour of that day
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let sp = event_job("sp-reports");
    run(&p, "day", "2026-11-23T06:00:00Z", std::slice::from_ref(&sp)).await;
    let mut hour = with_window(
        sp,
        json!({"rule": "explicit", "start": "2026-11-22T13:00:00Z", "end": "2026-11-22T14:00:00Z"}),
    );
    hour["name"] = json!("sp-hour");
    run(&p, "hour", "2026-11-23T07:00:00Z", &[hour]).await;

    // THEN the day still reads the whole day's run: the hour's rows are in the history only
    let manifests = p.manifests().await;
    let day = objects_of(
        manifest(&manifests, "sp-orders-daily", "2026-11-22"),
        Some("2026-11-22"),
    );
    let expected = figures(&p, &day, "item-price").await;
    let table = "sp_reports_get_flat_file_all_orders_data_by_order_date_general";
    let read = per_day(&p, table, "item_price");
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read["2026-11-22"].0, expected.0, "the day's rows, not the hour's");
    let history = p.query(&[&format!("SELECT count(*) FROM {table}_history")]);
    assert_eq!(history[0].count(), Some(rows_of(&manifests, "sp")));
    assert!(rows_of(&manifests, "sp-hour") > 0, "the hour stored rows");
}

/// Runs `first` then `second` (each a job and its scheduled time) as two executions of the real state
/// machine, `first` asked of Amazon before `second` but finishing after it: the simulator keeps the
/// Ads report over the range starting on `held` `PENDING` until `second` has succeeded.
async fn overtaken(p: &Pipeline, first: (&Value, &str), second: (&Value, &str), held: &str) {
    p.sim.hold_ads_reports_from(held);
    let input = json!({ "scheduledTime": first.1, "jobs": [first.0] });
    let arn = p.sfn.start(&p.machine, "asked-first", &input).await.expect("start");
    let asked = |p: &Pipeline| {
        p.sim
            .requests_of("ads.createReport")
            .iter()
            .any(|r| r.status < 300 && serde_json::from_str::<Value>(&r.body).is_ok_and(|b| b["startDate"] == held))
    };
    for _ in 0..300 {
        if asked(p) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(asked(p), "the first execution asked Amazon for its report");
    run(p, "asked-second", second.1, std::slice::from_ref(second.0)).await;
    let still = p.sfn.call("DescribeExecution", json!({ "executionArn": arn })).await;
    assert_eq!(
        still.expect("describe")["status"],
        "RUNNING",
        "the first run is overtaken"
    );
    p.sim.release_ads_reports();
    let execution = p
        .sfn
        .wait(&arn, std::time::Duration::from_secs(300))
        .await
        .expect("wait");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
}

/// Checks that each of `days` (day, job, start of its window) reads, through SQL, the rows and figures
/// that run stored for it, once; and that the overtaken run (`overtaken`: its job and window start)
/// stored other figures for the 21st (restated), so the check means something.
async fn read_from(p: &Pipeline, days: &[(&str, &str, &str)], overtaken: (&str, &str)) {
    let manifests = p.manifests().await;
    let read = per_day(p, "ads_reports_spcampaigns", "clicks");
    assert_eq!(read.len(), days.len(), "{read:?}");
    for &(day, job, start) in days {
        let objects = objects_of(manifest(&manifests, job, start), Some(day));
        let (rows, sum) = figures(p, &objects, "clicks").await;
        assert_eq!(read[day].0, rows, "{day}: {job}'s rows from {start}, once");
        assert!((read[day].1 - sum).abs() < 1e-6, "{day}: {job}'s figures from {start}");
    }
    let (job, start) = overtaken;
    let copy = objects_of(manifest(&manifests, job, start), Some("2026-11-21"));
    let (_, sum) = figures(p, &copy, "clicks").await;
    assert!((sum - read["2026-11-21"].1).abs() > 1e-6, "{job} restated the 21st");
}

#[tokio::test]
async fn a_backfill_requested_earlier_that_finishes_later_never_replaces_the_days_of_the_run_requested_after_it() {
    // GIVEN a backfill of 19–21 November asked of Amazon first, then the daily run of 20–22 November
    // (yesterday with a two-day lookback) asked after it: both cover the 20th and the 21st
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let mut backfill = with_window(event_job("ads-reports"), explicit("2026-11-19", "2026-11-22"));
    backfill["name"] = json!("ads-backfill");
    let daily = with_window(
        event_job("ads-reports"),
        json!({"rule": "yesterday", "lookbackDays": 2}),
    );
    // WHEN the backfill's report is slow, so the daily run finishes first and the backfill after it
    overtaken(
        &p,
        (&backfill, "2026-11-23T05:00:00Z"),
        (&daily, "2026-11-23T06:00:00Z"),
        "2026-11-19",
    )
    .await;

    // THEN the days both cover read the daily run's rows, the one requested last; the 19th the backfill's
    // AND the backfill's copy of the 21st differs (restated), so the check means something
    read_from(
        &p,
        &[
            ("2026-11-19", "ads-backfill", "2026-11-19"),
            ("2026-11-20", "ads-sp-campaigns-daily", "2026-11-20"),
            ("2026-11-21", "ads-sp-campaigns-daily", "2026-11-20"),
            ("2026-11-22", "ads-sp-campaigns-daily", "2026-11-20"),
        ],
        ("ads-backfill", "2026-11-19"),
    )
    .await;
}

#[tokio::test]
async fn two_overlapping_runs_of_one_job_leave_each_shared_day_to_the_one_requested_last_whichever_finishes_last() {
    // GIVEN the daily run of 22 November (19–21, with a two-day lookback), late and still waiting on
    // Amazon when the run of 23 November (20–22) is asked for: one job, two runs, two shared days
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let daily = with_window(
        event_job("ads-reports"),
        json!({"rule": "yesterday", "lookbackDays": 2}),
    );
    // WHEN the run of the 23rd finishes first and the run of the 22nd after it
    overtaken(
        &p,
        (&daily, "2026-11-22T06:00:00Z"),
        (&daily, "2026-11-23T06:00:00Z"),
        "2026-11-19",
    )
    .await;

    // THEN the shared days read the run of the 23rd, asked last; the 19th the run of the 22nd
    // AND the late run's copy of the 21st differs (restated), so the check means something
    read_from(
        &p,
        &[
            ("2026-11-19", "ads-sp-campaigns-daily", "2026-11-19"),
            ("2026-11-20", "ads-sp-campaigns-daily", "2026-11-20"),
            ("2026-11-21", "ads-sp-campaigns-daily", "2026-11-20"),
            ("2026-11-22", "ads-sp-campaigns-daily", "2026-11-20"),
        ],
        ("ads-sp-campaigns-daily", "2026-11-19"),
    )
    .await;
}

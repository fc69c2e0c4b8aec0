//! Every data day has a known state, through the real state machine: a daily `repull` Ads job over a
//! simulated calendar (scheduled times advanced day by day), one firing whose report Amazon fails
//! and one firing the schedule misses. The day records in the job table and the `_day_status` table
//! the SQL engine reads must say, for every day, whether it is final, provisional, failed (with its
//! cause) or overdue; no day is ever final before its final pull.
//!
//! Source of the restatement facts the policy stands for: the Ads reporting v3 FAQ
//! (`../shared/reference/amazon-apis.md` §11); this test uses a short override (final at age 5) so
//! that a calendar of ten firings covers every transition.

use amzpipe::domain::day_state::{Cause, DayRecord, DayStatus};
use amzpipe_testkit::sim::{Scenario, SimConfig};
use amzpipe_testkit::stack::{Pipeline, event_job};
use chrono::{Duration, NaiveDate, Utc};
use serde_json::json;

const FINAL_AGE: i64 = 5;

/// The job's day records, oldest first.
async fn records(p: &Pipeline, first: NaiveDate, last: NaiveDate) -> Vec<DayRecord> {
    records_of(p, "ads-repull", first, last).await
}

/// The day records `job` wrote last, oldest first.
async fn records_of(p: &Pipeline, job: &str, first: NaiveDate, last: NaiveDate) -> Vec<DayRecord> {
    p.services
        .store
        .all_day_records(first, last, Some(job))
        .await
        .expect("the day records")
        .into_iter()
        .map(|(_, _, record)| record)
        .collect()
}

fn record(records: &[DayRecord], day: NaiveDate) -> &DayRecord {
    records
        .iter()
        .find(|r| r.day == day)
        .unwrap_or_else(|| panic!("a record of {day}"))
}

#[tokio::test]
async fn a_repull_calendar_makes_each_day_final_at_its_final_pull_and_records_failed_and_overdue_days_with_their_cause()
{
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    let mut job = event_job("ads-reports");
    job["name"] = json!("ads-repull");
    job["window"] = json!({"rule": "repull"});
    job["finality"] = json!({"repullDays": [3, FINAL_AGE], "finalAfterDays": FINAL_AGE});
    // GIVEN ten daily firings ending 11 days ago (within the simulator's 95-day Ads retention), the
    // report of firing 4 failed by Amazon, and firing 7 missed by the schedule
    let start = Utc::now().date_naive() - Duration::days(20);
    let firing_day = |i: i64| start + Duration::days(i);
    let (failed, missed) = (4, 7);
    for i in 0..10 {
        if i == missed {
            continue;
        }
        if i == failed {
            p.sim.set_scenario(Scenario::with_outcome("spCampaigns", "FAILED"));
        }
        let creates = p.sim.requests_of("ads.createReport").len();
        // WHEN the schedule fires for the day
        let execution = p
            .execute(
                &format!("firing-{i}"),
                &format!("{}T06:00:00Z", firing_day(i)),
                &[job.clone()],
            )
            .await
            .expect("execution");
        let asked = p.sim.requests_of("ads.createReport").len() - creates;
        assert!(
            (1..=2).contains(&asked),
            "firing {i} asked Amazon for {asked} reports: at most 2 per profile, report type and day"
        );
        let today = firing_day(i);
        let recorded = records(&p, start - Duration::days(10), today).await;
        for r in &recorded {
            // THEN no day is ever final before a pull at its final age
            if let Some(current) = r.current.as_ref().filter(|c| c.is_final) {
                assert!(
                    current.age >= FINAL_AGE,
                    "{} final after a pull at age {}",
                    r.day,
                    current.age
                );
            }
        }
        if i == failed {
            p.sim.set_scenario(Scenario::default());
            // THEN the days the failed report covered are failed, with Amazon's failure as the cause
            for age in 1..=FINAL_AGE {
                let day = today - Duration::days(age);
                let state = record(&recorded, day).state(today);
                assert_eq!(
                    (state.status, state.cause),
                    (DayStatus::Failed, Some(Cause::AmazonFatal)),
                    "{day} after the failed firing"
                );
            }
        } else {
            assert_eq!(execution.status, "SUCCEEDED", "firing {i}: {:#}", execution.output);
        }
    }
    let end = firing_day(10);
    let recorded = records(&p, start - Duration::days(10), end).await;
    let state = |day: NaiveDate| record(&recorded, day).state(end);
    // THEN a day failed at its final pull is overdue with the failure's cause
    let failed_final = firing_day(failed) - Duration::days(FINAL_AGE);
    assert_eq!(
        (state(failed_final).status, state(failed_final).cause),
        (DayStatus::Overdue, Some(Cause::AmazonFatal))
    );
    // AND a day failed at an earlier pull was pulled again at its next age and is final
    let retried = firing_day(failed) - Duration::days(1);
    assert_eq!(state(retried).status, DayStatus::Final, "{retried}");
    // AND a day whose final pull fell on the missed firing is overdue for want of it
    let skipped_final = firing_day(missed) - Duration::days(FINAL_AGE);
    assert_eq!(
        (state(skipped_final).status, state(skipped_final).cause),
        (DayStatus::Overdue, Some(Cause::NoFinalPull))
    );
    // AND the days whose final pull came are final, each pull counted and compared with the last
    for day in [firing_day(3), firing_day(4)] {
        let r = record(&recorded, day);
        assert_eq!(state(day).status, DayStatus::Final, "{day}");
        assert_eq!(r.current.as_ref().map(|c| c.age), Some(FINAL_AGE), "{day}");
        assert_eq!(
            r.row_drift().map(|(rows, _)| rows),
            Some(0),
            "the simulator's rows of a day are constant"
        );
    }
    assert_eq!(
        record(&recorded, firing_day(4)).pulls,
        4,
        "pulled at ages 1, 2, 4 and 5 (age 3 fell on the missed firing)"
    );
    assert_eq!(
        state(firing_day(8)).status,
        DayStatus::Provisional,
        "the last firing's first pull"
    );

    // THEN the catalog's day status table answers which days are not final, and why
    let answer = &p.query(&[
        "SELECT data_day, status, cause FROM ads_reports_spcampaigns_day_status WHERE status <> 'final' ORDER BY data_day",
    ])[0];
    let rows: Vec<(String, String, String)> = answer
        .rows
        .iter()
        .map(|r| {
            let text = |i: usize| r[i].clone().unwrap_or_default();
            (text(0), text(1), text(2))
        })
        .collect();
    let row = |day: NaiveDate| rows.iter().find(|r| r.0 == day.to_string());
    assert_eq!(
        row(failed_final).map(|r| (r.1.as_str(), r.2.as_str())),
        Some(("overdue", "amazon_fatal")),
        "{rows:?}"
    );
    assert_eq!(
        row(skipped_final).map(|r| (r.1.as_str(), r.2.as_str())),
        Some(("overdue", "no_final_pull")),
        "{rows:?}"
    );
    assert!(row(firing_day(3)).is_none(), "a final day is not listed: {rows:?}");
}

/// The README's as-of query (the `sql` block after "**As of.**"), its time replaced by `at`.
fn as_of_query(at: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(path).expect("the README");
    let from = readme.find("**As of.**").expect("the As of paragraph");
    let block = readme[from..]
        .split("```sql\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an sql block");
    let documented = "'2026-12-01T12:00:00.000Z'";
    assert!(block.contains(documented), "{block}");
    block.replace(documented, &format!("'{at}'"))
}

/// The sum of `clicks` over `day`'s rows of `sql`'s answer (columns by name), and their count.
fn clicks_of(p: &Pipeline, sql: &str, day: NaiveDate) -> (usize, f64) {
    let answer = &p.query(&[sql])[0];
    let date = answer.columns.iter().position(|c| c == "date").expect("a date column");
    let clicks = answer
        .columns
        .iter()
        .position(|c| c == "clicks")
        .expect("a clicks column");
    let rows: Vec<&Vec<Option<String>>> = answer
        .rows
        .iter()
        .filter(|r| r[date].as_deref() == Some(day.to_string().as_str()))
        .collect();
    let sum = rows
        .iter()
        .map(|r| r[clicks].as_deref().unwrap_or("0").parse::<f64>().expect("a number"))
        .sum();
    (rows.len(), sum)
}

#[tokio::test]
async fn the_readmes_as_of_query_reads_a_day_as_it_was_known_before_and_after_its_re_pull() {
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    // GIVEN a day pulled the day after, and pulled again the next day (a lookback), Amazon restating
    // its figures in between (the simulator's answers differ per report)
    let day = Utc::now().date_naive() - Duration::days(10);
    let mut first = event_job("ads-reports");
    first["name"] = json!("ads-as-of");
    let mut second = first.clone();
    second["window"] = json!({"rule": "yesterday", "lookbackDays": 1});
    let at = |d: NaiveDate| format!("{d}T06:00:00Z");
    let one = p
        .execute("pull-1", &at(day + Duration::days(1)), &[first])
        .await
        .expect("execution");
    assert_eq!(one.status, "SUCCEEDED", "{:#}", one.output);
    let between = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let two = p
        .execute("pull-2", &at(day + Duration::days(2)), &[second])
        .await
        .expect("execution");
    assert_eq!(two.status, "SUCCEEDED", "{:#}", two.output);
    // WHEN the README's as-of query asks for the table as it was between the pulls, and as of now
    let before = clicks_of(&p, &as_of_query(&between), day);
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let after = clicks_of(&p, &as_of_query(&now), day);
    let current = clicks_of(&p, "SELECT * FROM ads_reports_spcampaigns", day);
    // THEN it reads the first pull's figures, then the second's, which are the current table's
    assert!(before.0 > 0, "the day had rows between the pulls");
    assert_eq!(before.0, after.0, "the same rows, restated");
    assert_ne!(before.1, after.1, "the re-pull restated the figures");
    assert_eq!(after, current, "as of now is the current table");
    let history = clicks_of(&p, "SELECT * FROM ads_reports_spcampaigns_history", day);
    assert_eq!(history.0, before.0 * 2, "the history holds both pulls");
}

/// `(day, sum of column)` of the current table, per day.
fn sums(p: &Pipeline, column: &str) -> std::collections::BTreeMap<String, f64> {
    let sql = format!("SELECT date, sum(CAST({column} AS DOUBLE)) FROM ads_reports_spcampaigns GROUP BY date");
    p.query(&[&sql])[0]
        .rows
        .iter()
        .map(|r| {
            let text = |i: usize| r[i].clone().unwrap_or_default();
            (text(0), text(1).parse().expect("a sum"))
        })
        .collect()
}

#[tokio::test]
async fn a_45_day_calendar_of_restated_ads_figures_leaves_each_day_final_with_its_last_restatement_and_never_earlier() {
    let p = Pipeline::start(SimConfig::default(), 4).await.expect("pipeline");
    // GIVEN the Ads job with the repull rule and the default policy (pulled at ages 1, 4, 8, 29 and
    // 43, final at 43), and the simulator restating as the FAQ says: clicks for 3 days, conversions
    // (sales14d) 1, 7 and 28 days after each event of the 14-day window, the last at age 42
    let mut job = event_job("ads-reports");
    job["name"] = json!("ads-calendar");
    job["window"] = json!({"rule": "repull"});
    job["source"]["columns"] = json!(["date", "campaignId", "impressions", "clicks", "cost", "sales14d"]);
    let parsed = amzpipe::domain::job::Job::from_value(job.clone()).expect("a valid job");
    const LAST_RESTATEMENT_AGE: i64 = 14 + 28;
    let today = Utc::now().date_naive();
    let firing = |i: i64| today - Duration::days(44 - i);
    let mut expected_pulls: std::collections::BTreeMap<NaiveDate, u32> = std::collections::BTreeMap::new();
    for i in 0..45 {
        // WHEN the schedule fires on each of 45 days, the simulator's day moving with it
        let day = firing(i);
        p.sim.configure(|c| c.ads_restating_as_of = Some(day));
        let scheduled = day.and_hms_opt(6, 0, 0).expect("a time").and_utc();
        for window in parsed.repull_plan(scheduled).expect("a plan") {
            for covered in window.first.iter_days().take_while(|d| *d <= window.last) {
                *expected_pulls.entry(covered).or_default() += 1;
            }
        }
        let creates = p.sim.requests_of("ads.createReport").len();
        let execution = p
            .execute(&format!("day-{i}"), &format!("{day}T06:00:00Z"), &[job.clone()])
            .await
            .expect("execution");
        assert_eq!(execution.status, "SUCCEEDED", "firing {i}: {:#}", execution.output);
        let asked = p.sim.requests_of("ads.createReport").len() - creates;
        assert!(
            asked <= 2,
            "firing {i} asked for {asked} reports of one profile and report type"
        );
        // THEN no day is ever final before its last restatement
        for r in records_of(&p, "ads-calendar", firing(0) - Duration::days(50), day).await {
            if let Some(current) = r.current.as_ref().filter(|c| c.is_final) {
                assert!(
                    current.age > LAST_RESTATEMENT_AGE,
                    "{} final after a pull at age {}",
                    r.day,
                    current.age
                );
            }
        }
    }
    let recorded = records_of(&p, "ads-calendar", firing(0) - Duration::days(50), today).await;
    // THEN every pull the plans made is recorded, and the days whose final age came are final
    for r in &recorded {
        assert_eq!(Some(&r.pulls), expected_pulls.get(&r.day), "{}: pulls", r.day);
    }
    let final_days: Vec<NaiveDate> = recorded
        .iter()
        .filter(|r| (firing(44) - r.day).num_days() >= 43 && (firing(0) - r.day).num_days() <= 43)
        .map(|r| r.day)
        .collect();
    assert_eq!(final_days.len(), 45, "{final_days:?}");
    for r in &recorded {
        let status = r.state(today).status;
        if final_days.contains(&r.day) {
            assert_eq!(status, DayStatus::Final, "{}", r.day);
        } else {
            assert_eq!(status, DayStatus::Provisional, "{} not yet at its final age", r.day);
        }
    }
    // AND a final day holds its last restatement's figures: a pull a month later changes none of
    // them, while it does change a provisional day's
    let before = (sums(&p, "sales14d"), sums(&p, "clicks"));
    p.sim
        .configure(|c| c.ads_restating_as_of = Some(today + Duration::days(30)));
    let mut probe = job.clone();
    probe["name"] = json!("ads-calendar-probe");
    probe["window"] = json!({"rule": "explicit", "start": format!("{}T00:00:00Z", final_days[0]),
        "end": format!("{}T00:00:00Z", today)});
    let execution = p
        .execute("probe", &format!("{today}T06:00:00Z"), &[probe])
        .await
        .expect("execution");
    assert_eq!(execution.status, "SUCCEEDED", "{:#}", execution.output);
    let after = (sums(&p, "sales14d"), sums(&p, "clicks"));
    for day in &final_days {
        let key = day.to_string();
        assert_eq!(before.0.get(&key), after.0.get(&key), "{day}: conversions final");
        assert_eq!(before.1.get(&key), after.1.get(&key), "{day}: clicks final");
    }
    let yesterday = (today - Duration::days(1)).to_string();
    assert_ne!(
        before.0.get(&yesterday),
        after.0.get(&yesterday),
        "a provisional day is restated"
    );
}

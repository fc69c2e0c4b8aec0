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
    p.services
        .store
        .all_day_records(first, last, Some("ads-repull"))
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

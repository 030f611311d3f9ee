//! Operations against a live cluster: pg_cron really runs a scheduled refresh that records its
//! success in job_runs, DROP EXTENSION leaves no cron job behind, and refreshes killed mid-way
//! (pg_terminate_backend, and kill -9 of the backend, which crashes and restarts the server)
//! leave every aggregate exact.

use std::thread;
use std::time::{Duration, Instant};

use pgrx_test::{connect, count, fresh_extension, load_reference, mismatches, refresh, url};
use postgres::{Client, NoTls};

fn cron_jobs(c: &mut Client) -> i64 {
    count(
        c,
        "SELECT count(*) FROM cron.job WHERE jobname LIKE 'popularity\\_engine.%'",
    )
}

#[test]
fn pg_cron_runs_the_refresh_and_drop_extension_unschedules() {
    let mut c = fresh_extension();
    c.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        .expect("pg_cron in the cron database");
    c.batch_execute("SELECT popularity_engine.track(1, 7, 'view') FROM generate_series(1, 3)")
        .unwrap();

    let scheduled = c
        .query("SELECT job_name, schedule FROM popularity_engine.schedule_jobs(refresh_popularity_schedule => '* * * * *')", &[])
        .unwrap();
    assert_eq!(scheduled.len(), 5);
    c.query(
        "SELECT * FROM popularity_engine.schedule_jobs(refresh_popularity_schedule => '* * * * *')",
        &[],
    )
    .unwrap();
    assert_eq!(
        cron_jobs(&mut c),
        5,
        "scheduling twice updates, never duplicates"
    );

    // pg_cron starts the job at the next minute boundary
    let started = Instant::now();
    let mut ran = false;
    while started.elapsed() < Duration::from_secs(150) {
        if count(&mut c, "SELECT count(*) FROM popularity_engine.job_runs WHERE job = 'refresh_popularity' AND status = 'success'") > 0 {
            ran = true;
            break;
        }
        thread::sleep(Duration::from_secs(2));
    }
    assert!(
        ran,
        "pg_cron did not run popularity_engine.refresh_popularity within 150 s"
    );
    println!(
        "pg_cron ran refresh_popularity {:.0} s after scheduling",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT view_count FROM popularity_engine.product_popularity WHERE product_id = 7"
        ),
        3
    );
    assert!(
        count(&mut c, "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                        WHERE j.jobname = 'popularity_engine.refresh_popularity' AND d.status = 'succeeded'") > 0,
        "cron.job_run_details records the successful run"
    );

    c.batch_execute("DROP EXTENSION popularity_engine").unwrap();
    assert_eq!(
        cron_jobs(&mut c),
        0,
        "DROP EXTENSION leaves no cron job behind"
    );
    c.batch_execute("CREATE EXTENSION popularity_engine")
        .unwrap();
}

/// Logs `n` interactions in `n / 1000` transactions, straight into the log.
fn backlog(c: &mut Client, n: i64) {
    for _ in 0..(n / 1000) {
        c.batch_execute(
            "INSERT INTO popularity_engine.product_interactions (user_id, product_id, interaction_type, event_value, occurred_at)
             SELECT 1 + (random() * 500)::int, 1 + (random() * 2000)::int,
                    (ARRAY['view','click','add_to_cart','order','wishlist_add']::popularity_engine.interaction_type[])[1 + (random() * 4)::int],
                    1, now() - random() * interval '10 days'
               FROM generate_series(1, 1000)",
        )
        .unwrap();
    }
}

/// Starts a chunked refresh on its own connection and returns its backend pid once it runs.
fn start_refresh() -> (i32, thread::JoinHandle<Result<(), postgres::Error>>) {
    let mut runner = connect();
    let pid: i32 = runner
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let handle = thread::spawn(move || {
        runner.batch_execute("CALL popularity_engine.refresh_popularity(max_rows => 5000)")
    });
    // wait until at least one step has committed, so that the kill lands between or inside later steps
    let mut watch = connect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let pending = count(
            &mut watch,
            "SELECT pending_interactions FROM popularity_engine.aggregation_lag()",
        );
        if pending < 150_000 {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    (pid, handle)
}

fn assert_exact_after_refresh(label: &str) {
    let mut c = connect();
    refresh(&mut c);
    load_reference(&mut c);
    let wrong = mismatches(&mut c);
    let pending = count(
        &mut c,
        "SELECT pending_interactions FROM popularity_engine.aggregation_lag()",
    );
    println!(
        "{label}: refresh completed afterwards, {} mismatches, {pending} pending",
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{label}: aggregates differ from the recount: {wrong:?}"
    );
    assert_eq!(pending, 0);
}

#[test]
fn a_terminated_refresh_leaves_aggregates_exact() {
    let mut c = fresh_extension();
    backlog(&mut c, 150_000);
    let (pid, handle) = start_refresh();
    let killed: bool = c
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap()
        .get(0);
    assert!(killed, "the refresh backend was running");
    let result = handle.join().unwrap();
    assert!(result.is_err(), "the refresh was cut off");
    let pending = count(
        &mut c,
        "SELECT pending_interactions FROM popularity_engine.aggregation_lag()",
    );
    println!(
        "terminated refresh: {} of 150000 rows were committed in steps before the kill",
        150_000 - pending
    );
    assert!(
        pending > 0 && pending < 150_000,
        "the kill landed after some steps committed and before the last"
    );
    assert_exact_after_refresh("pg_terminate_backend");
}

#[test]
fn a_crash_during_a_refresh_leaves_aggregates_exact() {
    let mut c = fresh_extension();
    backlog(&mut c, 150_000);
    let (pid, handle) = start_refresh();
    let status = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
    let _ = handle.join().unwrap();
    drop(c);
    // the postmaster restarts every backend and recovers; wait until it accepts connections
    let started = Instant::now();
    loop {
        let up = Client::connect(&url(), NoTls).map(|mut c| c.simple_query("SELECT 1").is_ok());
        if up.unwrap_or(false) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not come back"
        );
        thread::sleep(Duration::from_millis(250));
    }
    println!(
        "server recovered {:.1} s after kill -9",
        started.elapsed().as_secs_f64()
    );
    assert_exact_after_refresh("kill -9");
}

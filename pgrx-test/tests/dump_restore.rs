//! pg_dump / pg_restore into a new database of the same cluster and into a new cluster (where
//! transaction ids start over): tracking and refreshing stay exact, including the rows that
//! were logged but not yet aggregated when the dump was taken.

use std::path::PathBuf;
use std::process::Command;

use pgrx_test::{count, fresh_extension, load_reference, mismatches, refresh, url};
use postgres::{Client, NoTls};

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn param(key: &str) -> String {
    url()
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("PE_TEST_URL has no {key}"))
}

fn track_some(c: &mut Client, first_user: i64) {
    c.batch_execute(&format!(
        "SELECT popularity_engine.track({u}, p, (ARRAY['view','add_to_cart','order','wishlist','click'])[1 + p % 5]::popularity_engine.interaction_type,
                                        occurred_at => now() - make_interval(mins => p))
           FROM generate_series(1, 40) AS p;
         SELECT popularity_engine.track_search({u}, 'q', ARRAY[1, 2, 3]);",
        u = first_user
    ))
    .expect("tracking");
}

fn check_exact(c: &mut Client, label: &str) {
    refresh(c);
    load_reference(c);
    let wrong = mismatches(c);
    assert!(
        wrong.is_empty(),
        "{label}: aggregates differ from the recount: {wrong:?}"
    );
    c.batch_execute("CALL popularity_engine.refresh_user_preferences()")
        .expect("refresh_user_preferences");
    let per_user = count(
        c,
        "SELECT count(*) FROM (
             SELECT user_id, count(*) AS n FROM popularity_engine.product_interactions
              WHERE user_id IS NOT NULL AND product_id IS NOT NULL GROUP BY 1) l
           FULL JOIN popularity_engine.user_profiles p USING (user_id)
          WHERE l.n IS DISTINCT FROM p.interaction_count",
    );
    assert_eq!(
        per_user, 0,
        "{label}: user_profiles counts differ from the log"
    );
    let logged = count(
        c,
        "SELECT count(*) FROM popularity_engine.product_interactions",
    );
    let counted = count(
        c,
        "SELECT coalesce(sum(events), 0)::int8 FROM popularity_engine.product_type_totals",
    );
    println!("{label}: {logged} interactions logged, {counted} counted, 0 mismatches");
}

/// Restores `dump` into `dbname` on `port` and returns a connection to it.
fn restore(dump: &PathBuf, port: &str, dbname: &str) -> Client {
    let admin = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let mut c = Client::connect(&admin, NoTls).expect("connect for createdb");
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
        .unwrap();
    c.batch_execute(&format!("CREATE DATABASE {dbname}"))
        .unwrap();
    run(Command::new(format!("{BIN}/pg_restore"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-U",
            "postgres",
            "-d",
            dbname,
            "--exit-on-error",
        ])
        .arg(dump));
    Client::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname={dbname}"),
        NoTls,
    )
    .unwrap()
}

#[test]
fn dump_and_restore_keep_aggregation_exact() {
    let mut src = fresh_extension();
    track_some(&mut src, 1);
    // weekly partitions are ordinary tables the dump must carry, with the rows moved into them
    src.batch_execute("SELECT popularity_engine.ensure_partitions(now() - interval '2 weeks')")
        .unwrap();
    refresh(&mut src);
    track_some(&mut src, 2); // logged, not yet aggregated when dumped
    src.batch_execute("UPDATE popularity_engine.interaction_weights SET popularity_weight = 7 WHERE interaction_type = 'click'")
        .unwrap();

    let dir = PathBuf::from(
        std::env::var("PE_TEST_DATA").unwrap_or_else(|_| "/tmp/popularity_engine".into()),
    )
    .parent()
    .unwrap()
    .to_path_buf();
    let dump = dir.join("pe_test.dump");
    run(Command::new(format!("{BIN}/pg_dump"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &param("port"),
            "-U",
            "postgres",
            "-Fc",
            "-f",
        ])
        .arg(&dump)
        .arg(param("dbname")));

    // 1. a new database in the same cluster
    let mut same = restore(&dump, &param("port"), "pe_restored");
    assert_eq!(
        count(&mut same, "SELECT (popularity_weight = 7)::int::int8 FROM popularity_engine.interaction_weights WHERE interaction_type = 'click'"),
        1,
        "edited weights survive the restore"
    );
    assert_eq!(
        count(
            &mut same,
            "SELECT count(*) FROM popularity_engine.product_interactions_default"
        ),
        0,
        "restored rows are back in their weekly partitions"
    );
    track_some(&mut same, 3);
    let floor = "SELECT legacy_interaction_id_floor FROM popularity_engine.refresh_state";
    assert_eq!(
        count(&mut same, floor),
        0,
        "same cluster: transaction ids stay meaningful, no rebase"
    );
    check_exact(&mut same, "new database");
    track_some(&mut same, 4);
    check_exact(&mut same, "new database, second round");

    // 2. a new cluster: transaction ids start over there
    let port = "28817";
    let data = dir.join("restore-cluster");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pgcluster.sh");
    let cluster = |action: &str| {
        run(Command::new("bash")
            .arg(&script)
            .arg(action)
            .env("PE_PORT", port)
            .env("PE_DATA", &data)
            .env("PE_DB", "pe_restored"));
    };
    cluster("destroy");
    cluster("start");
    let mut other = restore(&dump, port, "pe_restored");
    let src_xid = count(&mut src, "SELECT pg_current_xact_id()::text::int8");
    let new_xid = count(&mut other, "SELECT pg_current_xact_id()::text::int8");
    assert!(
        new_xid < src_xid,
        "the new cluster's xids ({new_xid}) are behind the source's ({src_xid})"
    );
    track_some(&mut other, 5); // tracked before any refresh in the new cluster
    assert_eq!(
        count(&mut other, floor),
        80,
        "new cluster: the first tracking call re-anchored the state"
    );
    check_exact(&mut other, "new cluster");
    track_some(&mut other, 6);
    check_exact(&mut other, "new cluster, second round");
    drop(other);
    cluster("destroy");
}

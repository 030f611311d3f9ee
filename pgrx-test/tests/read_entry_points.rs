//! Every read entry point works as the FIRST statement of a FRESH connection, on the primary and
//! on a real hot standby (a `pg_basebackup -R` copy of the test cluster, streaming from it).
//!
//! A new backend has not loaded the extension's library yet, so the `popularity_engine.*`
//! settings it defines do not exist until something calls one of its C functions: SQL that reads
//! such a setting with `current_setting(...)` before that fails with `unrecognized configuration
//! parameter`. The other tests call `track()` or a refresh first, which loads the library and
//! hides the problem; here each entry point gets a connection of its own and runs first.
//!
//! Covered: popular_products (no window, a window, a category, both, trending), recommend for a
//! warm and a cold user, rank_products, similar_products, user_profile (warm and cold),
//! aggregation_lag, and `SELECT *` from every view of the schema (listed from pg_views, so a new
//! view is covered without touching this file). Each result is checked for plausible content.
//!
//! Needs PE_TEST_URL (the primary) and PE_TEST_DATA (its data directory, for the settings the
//! base backup copies); the standby runs as the `postgres` OS user on a free port near the
//! primary's, with its data under /tmp/popularity_engine/, and is always stopped and removed.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use pgrx_test::{connect, url};
use postgres::{Client, Config, NoTls, SimpleQueryMessage};
use serde_json::Value;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const DB: &str = "pe_replica_reads";
const WORK: &str = "/tmp/popularity_engine";
/// Bound on every wait: base backup, server start and stop, WAL replay.
const WAIT: Duration = Duration::from_secs(60);

const WARM_USER: i64 = 1001;
const COLD_USER: i64 = 2001;
/// Interactions tracked for WARM_USER (well above the default cold_start_threshold of 5).
const WARM_INTERACTIONS: i64 = 12;
/// Interactions tracked for COLD_USER (below the threshold).
const COLD_INTERACTIONS: i64 = 2;

/// The views the schema has at least; each must return rows with the data set up here.
const EXPECTED_VIEWS: [&str; 8] = [
    "product_popularity",
    "user_preferences",
    "popularity_report",
    "trending_products",
    "daily_interaction_stats",
    "user_affinity",
    "search_analytics",
    "job_health",
];

// ---------------------------------------------------------------------------------------------
// Running the server binaries as the `postgres` OS user, bounded in time
// ---------------------------------------------------------------------------------------------

fn whoami() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `program args...` as the `postgres` OS user (through sudo unless we are postgres), killed by
/// coreutils `timeout` after `limit`.
fn as_postgres(program: &str, args: &[&str], limit: Duration) -> Command {
    let mut cmd;
    if whoami() == "postgres" {
        cmd = Command::new("timeout");
    } else {
        cmd = Command::new("sudo");
        cmd.args(["-n", "-u", "postgres", "--", "timeout"]);
    }
    cmd.args(["-k", "5", &format!("{}s", limit.as_secs()), program])
        .args(args);
    cmd
}

/// Runs a command and returns its stdout, or an error with its exit status and output.
fn run(mut cmd: Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{shown} failed ({}{}):\n{stdout}{}",
            out.status,
            if out.status.code() == Some(124) {
                ", timed out"
            } else {
                ""
            },
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn pg_ctl(args: &[&str]) -> Result<String, String> {
    run(as_postgres(&format!("{BIN}/pg_ctl"), args, WAIT + WAIT))
}

/// The last lines of a server log, for failure messages.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

/// PE_TEST_URL, pointed at the test's own database.
fn primary_config() -> Config {
    let mut cfg: Config = url()
        .parse()
        .unwrap_or_else(|e| panic!("PE_TEST_URL {:?} does not parse: {e}", url()));
    cfg.dbname(DB);
    cfg
}

fn primary_port() -> u16 {
    primary_config()
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
}

fn standby_config(port: u16) -> Config {
    let primary = primary_config();
    let mut cfg = Config::new();
    cfg.host("127.0.0.1")
        .port(port)
        .user(primary.get_user().unwrap_or("postgres"))
        .dbname(DB);
    cfg
}

/// A new connection: no statement has run in it yet. Bounded by connect_timeout and a
/// statement_timeout given as a startup option (a core setting, so it loads no library).
fn fresh(cfg: &Config, what: &str) -> Result<Client, String> {
    let mut cfg = cfg.clone();
    cfg.connect_timeout(Duration::from_secs(10))
        .application_name("read_entry_points")
        .options("-c statement_timeout=60000");
    cfg.connect(NoTls)
        .map_err(|e| format!("cannot connect for {what}: {}", describe(&e)))
}

/// A server error with its severity, SQLSTATE, message, detail, hint and context.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(d) = db.detail() {
                s += &format!("; DETAIL: {d}");
            }
            if let Some(h) = db.hint() {
                s += &format!("; HINT: {h}");
            }
            if let Some(w) = db.where_() {
                s += &format!("; CONTEXT: {}", w.replace('\n', " / "));
            }
            s
        }
        None => e.to_string(),
    }
}

/// A query result in text form (from the simple query protocol, as psql would see it).
struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn col(&self, name: &str) -> Result<Vec<Option<&str>>, String> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("no column {name} among {:?}", self.columns))?;
        Ok(self.rows.iter().map(|r| r[i].as_deref()).collect())
    }

    fn texts(&self, name: &str) -> Result<Vec<String>, String> {
        self.col(name)?
            .into_iter()
            .map(|v| {
                v.map(str::to_string)
                    .ok_or_else(|| format!("{name} is NULL"))
            })
            .collect()
    }

    fn ints(&self, name: &str) -> Result<Vec<i64>, String> {
        self.texts(name)?
            .iter()
            .map(|v| v.parse().map_err(|e| format!("{name} = {v:?}: {e}")))
            .collect()
    }

    fn floats(&self, name: &str) -> Result<Vec<f64>, String> {
        self.texts(name)?
            .iter()
            .map(|v| v.parse().map_err(|e| format!("{name} = {v:?}: {e}")))
            .collect()
    }
}

/// Runs `sql` as the first and only statement of a new connection.
fn first_statement(cfg: &Config, what: &str, sql: &str) -> Result<Rows, String> {
    let mut c = fresh(cfg, what)?;
    let messages = c.simple_query(sql).map_err(|e| describe(&e))?;
    let mut out = Rows {
        columns: Vec::new(),
        rows: Vec::new(),
    };
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                out.columns = cols.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(row) => {
                if out.columns.is_empty() {
                    out.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                out.rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The test database and the hot standby, both removed at the end whatever happens
// ---------------------------------------------------------------------------------------------

/// Drops the test database (on the primary) when dropped.
struct TestDatabase;

impl TestDatabase {
    fn create() -> TestDatabase {
        let mut c = connect();
        c.batch_execute("SET client_min_messages = warning")
            .unwrap();
        // (each on its own: DROP and CREATE DATABASE refuse a multi-statement string)
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
            .expect("dropping a leftover test database");
        c.batch_execute(&format!("CREATE DATABASE {DB}"))
            .expect("creating the test database");
        TestDatabase
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match Client::connect(&url(), NoTls).and_then(|mut c| {
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        }) {
            Ok(()) => {}
            Err(e) => eprintln!("read_entry_points: could not drop database {DB}: {e}"),
        }
    }
}

/// A hot standby of the test cluster; stopped and its data directory removed when dropped.
struct Standby {
    data: PathBuf,
    port: u16,
}

impl Standby {
    fn log(&self) -> PathBuf {
        self.data.join("server.log")
    }

    fn data_str(&self) -> &str {
        self.data.to_str().expect("a UTF-8 path")
    }

    fn stop_and_remove(data: &Path) {
        let d = data.to_str().expect("a UTF-8 path");
        if data.join("postmaster.pid").exists() {
            if let Err(e) = pg_ctl(&["-D", d, "-m", "fast", "-w", "-t", "60", "stop"]) {
                eprintln!("read_entry_points: fast stop of the standby failed: {e}");
                if let Err(e) = pg_ctl(&["-D", d, "-m", "immediate", "-w", "-t", "60", "stop"]) {
                    eprintln!("read_entry_points: immediate stop of the standby failed: {e}");
                }
            }
        }
        if data.exists() {
            if let Err(e) = fs::remove_dir_all(data) {
                eprintln!("read_entry_points: removing {}: {e}", data.display());
                let _ = run(as_postgres("rm", &["-rf", d], WAIT));
            }
        }
    }

    /// pg_basebackup -R of the primary into a new data directory, configured as a hot standby
    /// on its own port with the primary's shared_preload_libraries, and started.
    fn start(primary: &mut Client) -> Standby {
        let primary_data = std::env::var("PE_TEST_DATA").unwrap_or_else(|_| {
            panic!("PE_TEST_DATA (the test cluster's data directory) is not set; run through scripts/test.sh")
        });
        assert!(
            Path::new(&primary_data).join("postgresql.conf").exists(),
            "PE_TEST_DATA={primary_data} is not a data directory"
        );
        let pport = primary_port();

        // the primary lets 127.0.0.1 replicate (initdb's trust lines do) and can stream
        let replication_rules = primary
            .query_one(
                "SELECT count(*) FROM pg_hba_file_rules
                  WHERE error IS NULL AND 'replication' = ANY(database) AND type = 'host'
                    AND (address IS NULL OR address = '127.0.0.1' OR address = 'all')",
                &[],
            )
            .expect("pg_hba_file_rules")
            .get::<_, i64>(0);
        assert!(
            replication_rules > 0,
            "the primary's pg_hba.conf ({primary_data}) has no 'host replication' line for 127.0.0.1"
        );
        let wal_level: String = primary.query_one("SHOW wal_level", &[]).unwrap().get(0);
        assert_ne!(
            wal_level, "minimal",
            "the primary needs wal_level = replica for a standby"
        );
        let preload: String = primary
            .query_one("SHOW shared_preload_libraries", &[])
            .unwrap()
            .get(0);

        // a free port: the primary's + 20, or the next free one above it
        let port = (pport.saturating_add(20)..pport.saturating_add(60))
            .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .unwrap_or_else(|| panic!("no free port in {}..{}", pport + 20, pport + 60));
        fs::create_dir_all(WORK).expect(WORK);
        let data = PathBuf::from(format!("{WORK}/read-entry-points-standby-{port}"));
        Standby::stop_and_remove(&data); // a leftover of an interrupted run
        let standby = Standby { data, port };

        println!(
            "read_entry_points: pg_basebackup -R of 127.0.0.1:{pport} into {}",
            standby.data.display()
        );
        let pport_s = pport.to_string();
        run(as_postgres(
            &format!("{BIN}/pg_basebackup"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pport_s,
                "-U",
                "postgres",
                "-D",
                standby.data_str(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-password",
            ],
            WAIT + WAIT,
        ))
        .unwrap_or_else(|e| panic!("pg_basebackup for the standby: {e}"));
        assert!(
            standby.data.join("standby.signal").exists(),
            "pg_basebackup -R wrote no standby.signal"
        );

        // postgresql.conf came with the backup; the appended lines override it
        let mut auto = fs::OpenOptions::new()
            .append(true)
            .open(standby.data.join("postgresql.auto.conf"))
            .expect("postgresql.auto.conf of the standby");
        writeln!(
            auto,
            "\n# read_entry_points test: hot standby of 127.0.0.1:{pport}\n\
             port = {port}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{dir}'\n\
             hot_standby = on\n\
             shared_preload_libraries = '{preload}'\n\
             log_min_messages = warning",
            dir = standby.data_str(),
            preload = preload.replace('\'', "''"),
        )
        .expect("configuring the standby");
        drop(auto);

        let log = standby.log();
        if let Err(e) = pg_ctl(&[
            "-D",
            standby.data_str(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "60",
            "start",
        ]) {
            panic!(
                "starting the standby failed: {e}\nserver.log:\n{}",
                log_tail(&log)
            );
        }
        println!("read_entry_points: hot standby running on 127.0.0.1:{port}");
        standby
    }

    /// A connection to the standby that is not one of the tested first statements.
    fn admin(&self) -> Client {
        let mut cfg = standby_config(self.port);
        cfg.connect_timeout(Duration::from_secs(10));
        cfg.connect(NoTls).unwrap_or_else(|e| {
            panic!(
                "cannot connect to the standby on port {}: {}\nserver.log:\n{}",
                self.port,
                describe(&e),
                log_tail(&self.log())
            )
        })
    }

    /// Waits (at most WAIT) until the standby has replayed the primary's WAL up to `lsn`.
    fn wait_for_replay(&self, lsn: &str) {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < WAIT {
            if let Ok(mut c) = standby_config(self.port)
                .connect_timeout(Duration::from_secs(5))
                .connect(NoTls)
            {
                if let Ok(row) = c.query_one(
                    "SELECT coalesce(pg_last_wal_replay_lsn()::text, ''),
                            coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                    &[&lsn],
                ) {
                    last = row.get(0);
                    if row.get::<_, bool>(1) {
                        println!(
                            "read_entry_points: the standby replayed up to {last} (primary at {lsn}) after {:.1} s",
                            started.elapsed().as_secs_f64()
                        );
                        return;
                    }
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the standby did not replay the primary's WAL up to {lsn} within {} s (replayed: {last:?})\nserver.log:\n{}",
            WAIT.as_secs(),
            log_tail(&self.log())
        );
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        println!(
            "read_entry_points: stopping and removing the standby ({})",
            self.data.display()
        );
        Standby::stop_and_remove(&self.data);
    }
}

// ---------------------------------------------------------------------------------------------
// Data, entry points and checks
// ---------------------------------------------------------------------------------------------

/// A catalog over three categories and two brands, a warm user with WARM_INTERACTIONS
/// interactions, other users that co-interact (for item similarity), a cold user, a search with
/// a click, and every refresh.
fn set_up(c: &mut Client) {
    c.batch_execute(
        "CREATE EXTENSION popularity_engine;
         INSERT INTO popularity_engine.catalog (product_id, category, brand, price, inventory)
         SELECT p, (ARRAY['electronics', 'books', 'toys'])[1 + (p - 1) % 3],
                CASE WHEN p % 2 = 1 THEN 'acme' ELSE 'globex' END, 10 * p, 100
           FROM generate_series(1, 12) AS p;",
    )
    .expect("CREATE EXTENSION and the catalog");

    // the warm user: 8 views, a click, a cart add, an order and a wishlist add, over 3 categories
    let warm = [
        (1, "view"),
        (2, "view"),
        (3, "view"),
        (4, "view"),
        (5, "view"),
        (6, "view"),
        (7, "view"),
        (8, "view"),
        (1, "click"),
        (4, "add_to_cart"),
        (7, "order"),
        (2, "wishlist_add"),
    ];
    assert_eq!(warm.len() as i64, WARM_INTERACTIONS);
    for (product, kind) in warm {
        c.execute(
            "SELECT popularity_engine.track($1, $2, $3::text::popularity_engine.interaction_type)",
            &[&WARM_USER, &(product as i64), &kind],
        )
        .unwrap_or_else(|e| panic!("track({WARM_USER}, {product}, {kind}): {e}"));
    }
    // other users view overlapping sets of products, so the products co-occur
    c.batch_execute(
        "SELECT popularity_engine.track(u, p, 'view')
           FROM generate_series(1002, 1006) AS u, generate_series(1, 6) AS p
          WHERE (u + p) % 3 <> 0;
         SELECT popularity_engine.track(1003, 1, 'add_to_cart');
         SELECT popularity_engine.track(1004, 2, 'order');",
    )
    .expect("tracking the other users");
    for product in 1..=COLD_INTERACTIONS {
        c.execute(
            "SELECT popularity_engine.track($1, $2, 'view')",
            &[&COLD_USER, &(product + 8)],
        )
        .expect("tracking the cold user");
    }
    c.batch_execute(
        "SELECT popularity_engine.track_search(1003, 'usb cable', ARRAY[1, 4, 7]::bigint[]);
         SELECT popularity_engine.track_search_click(1003, 'usb cable', 4);",
    )
    .expect("tracking a search and a click");

    for refresh in [
        "refresh_popularity",
        "refresh_user_preferences",
        "refresh_item_similarity",
    ] {
        c.batch_execute(&format!("CALL popularity_engine.{refresh}()"))
            .unwrap_or_else(|e| panic!("CALL popularity_engine.{refresh}(): {}", describe(&e)));
    }
}

type Check = Box<dyn Fn(&Rows) -> Result<(), String>>;

struct EntryPoint {
    name: String,
    sql: String,
    check: Check,
}

fn entry(
    name: &str,
    sql: &str,
    check: impl Fn(&Rows) -> Result<(), String> + 'static,
) -> EntryPoint {
    EntryPoint {
        name: name.to_string(),
        sql: sql.to_string(),
        check: Box::new(check),
    }
}

fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

/// rank is 1..=n in order, and every product appears once.
fn ranked(rows: &Rows) -> Result<(), String> {
    let ranks = rows.ints("rank")?;
    ensure(
        ranks == (1..=ranks.len() as i64).collect::<Vec<_>>(),
        || format!("ranks are not 1..{}: {ranks:?}", ranks.len()),
    )?;
    let products = rows.ints("product_id")?;
    let distinct: BTreeSet<i64> = products.iter().copied().collect();
    ensure(distinct.len() == products.len(), || {
        format!("a product appears twice: {products:?}")
    })
}

/// popular_products: some rows, ranked, positive scores, of `category` when given.
fn popular(category: Option<&'static str>) -> impl Fn(&Rows) -> Result<(), String> {
    move |rows| {
        ensure(rows.len() > 0, || "no rows".into())?;
        ranked(rows)?;
        let scores = rows.floats("score")?;
        ensure(scores.iter().all(|s| *s > 0.0), || {
            format!("a score is not positive: {scores:?}")
        })?;
        if let Some(cat) = category {
            let cats = rows.col("product_category")?;
            ensure(cats.iter().all(|c| *c == Some(cat)), || {
                format!("a product outside {cat}: {cats:?}")
            })?;
        }
        Ok(())
    }
}

/// The first (only) value of a one-row result, parsed as JSON.
fn json_value(rows: &Rows, column: &str) -> Result<Value, String> {
    ensure(rows.len() == 1, || {
        format!("{} rows, expected 1", rows.len())
    })?;
    let text = rows.texts(column)?.remove(0);
    serde_json::from_str(&text).map_err(|e| format!("{column} is not JSON ({e}): {text}"))
}

fn profile(user: i64, interactions: i64, cold: bool) -> impl Fn(&Rows) -> Result<(), String> {
    move |rows| {
        let p = json_value(rows, "profile")?;
        ensure(p["user_id"].as_i64() == Some(user), || {
            format!("user_id is not {user}: {p}")
        })?;
        ensure(
            p["interaction_count"].as_i64() == Some(interactions),
            || format!("interaction_count is not the {interactions} tracked: {p}"),
        )?;
        ensure(p["cold_start"].as_bool() == Some(cold), || {
            format!("cold_start is not {cold}: {p}")
        })?;
        ensure(!p["last_interaction"].is_null(), || {
            format!("no last_interaction: {p}")
        })?;
        if !cold {
            let top = p["top_categories"].as_array().map_or(0, Vec::len);
            ensure(top > 0, || format!("no top_categories: {p}"))?;
        }
        Ok(())
    }
}

fn entry_points() -> Vec<EntryPoint> {
    let pe = "popularity_engine";
    vec![
        entry(
            "popular_products()",
            &format!("SELECT * FROM {pe}.popular_products()"),
            popular(None),
        ),
        entry(
            "popular_products(time_window => '7 days')",
            &format!("SELECT * FROM {pe}.popular_products(time_window => '7 days')"),
            popular(None),
        ),
        entry(
            "popular_products(category => 'electronics')",
            &format!("SELECT * FROM {pe}.popular_products(category => 'electronics')"),
            popular(Some("electronics")),
        ),
        entry(
            "popular_products(time_window => '7 days', category => 'books')",
            &format!(
                "SELECT * FROM {pe}.popular_products(time_window => '7 days', category => 'books')"
            ),
            popular(Some("books")),
        ),
        entry(
            "popular_products('trending')",
            &format!("SELECT * FROM {pe}.popular_products('trending')"),
            popular(None),
        ),
        entry(
            "recommend(warm user, 5)",
            &format!("SELECT * FROM {pe}.recommend({WARM_USER}, 5)"),
            |rows| {
                ensure((1..=5).contains(&rows.len()), || {
                    format!("{} rows, expected 1 to 5", rows.len())
                })?;
                ranked(rows)?;
                let reasons = rows.texts("reason")?;
                ensure(!reasons.iter().any(|r| r == "cold_start"), || {
                    format!("a warm user got the cold-start list: {reasons:?}")
                })?;
                let pers = rows.floats("personalization")?;
                ensure(pers.iter().any(|p| *p > 0.0), || {
                    format!("nothing is personalised for a warm user: {pers:?} ({reasons:?})")
                })
            },
        ),
        entry(
            "recommend(cold user, 5)",
            &format!("SELECT * FROM {pe}.recommend({COLD_USER}, 5)"),
            |rows| {
                ensure((1..=5).contains(&rows.len()), || {
                    format!("{} rows, expected 1 to 5", rows.len())
                })?;
                ranked(rows)?;
                let reasons = rows.texts("reason")?;
                ensure(reasons.iter().all(|r| r == "cold_start"), || {
                    format!("a cold user got something besides the cold-start list: {reasons:?}")
                })
            },
        ),
        entry(
            "rank_products(warm user, ARRAY[1, 2, 3, 4, 5])",
            &format!(
                "SELECT * FROM {pe}.rank_products({WARM_USER}, ARRAY[1, 2, 3, 4, 5]::bigint[])"
            ),
            |rows| {
                ranked(rows)?;
                let got: BTreeSet<i64> = rows.ints("product_id")?.into_iter().collect();
                ensure(got == (1..=5).collect(), || {
                    format!("not every candidate once: {got:?}")
                })
            },
        ),
        entry(
            "similar_products(1)",
            &format!("SELECT * FROM {pe}.similar_products(1)"),
            |rows| {
                ensure(rows.len() > 0, || {
                    "no similar products for product 1".into()
                })?;
                ranked(rows)?;
                let ids = rows.ints("product_id")?;
                ensure(!ids.contains(&1), || {
                    format!("product 1 is similar to itself: {ids:?}")
                })?;
                let scores = rows.floats("score")?;
                ensure(scores.iter().all(|s| *s > 0.0), || {
                    format!("a score is not positive: {scores:?}")
                })
            },
        ),
        entry(
            "user_profile(warm user)",
            &format!("SELECT {pe}.user_profile({WARM_USER}) AS profile"),
            profile(WARM_USER, WARM_INTERACTIONS, false),
        ),
        entry(
            "user_profile(cold user)",
            &format!("SELECT {pe}.user_profile({COLD_USER}) AS profile"),
            profile(COLD_USER, COLD_INTERACTIONS, true),
        ),
        entry(
            "aggregation_lag()",
            &format!("SELECT * FROM {pe}.aggregation_lag()"),
            |rows| {
                ensure(rows.len() == 1, || {
                    format!("{} rows, expected 1", rows.len())
                })?;
                ensure(rows.ints("pending_interactions")? == [0], || {
                    "interactions pending after refresh_popularity".into()
                })?;
                ensure(rows.ints("pending_searches")? == [0], || {
                    "searches pending after refresh_popularity".into()
                })?;
                ensure(rows.col("last_refresh")?[0].is_some(), || {
                    "no last_refresh after refresh_popularity".into()
                })
            },
        ),
    ]
}

/// What a known view must contain; a view this test does not know only has to answer.
fn view_check(view: &str) -> Check {
    match view {
        "job_health" => Box::new(|rows: &Rows| {
            let jobs = rows.texts("job")?;
            let status = rows.col("last_status")?;
            for job in [
                "refresh_popularity",
                "refresh_user_preferences",
                "refresh_item_similarity",
            ] {
                let i = jobs
                    .iter()
                    .position(|j| j == job)
                    .ok_or_else(|| format!("no row for {job}: {jobs:?}"))?;
                ensure(status[i] == Some("success"), || {
                    format!("{job}: last_status {:?}, expected success", status[i])
                })?;
            }
            Ok(())
        }),
        "user_preferences" | "user_affinity" => Box::new(|rows: &Rows| {
            let users = rows.ints("user_id")?;
            ensure(users.contains(&WARM_USER), || {
                format!("no rows for the warm user {WARM_USER}: {users:?}")
            })
        }),
        "search_analytics" => Box::new(|rows: &Rows| {
            let queries = rows.texts("query")?;
            ensure(queries.iter().any(|q| q == "usb cable"), || {
                format!("the tracked search is missing: {queries:?}")
            })
        }),
        v if EXPECTED_VIEWS.contains(&v) => {
            Box::new(|rows: &Rows| ensure(rows.len() > 0, || "no rows".into()))
        }
        _ => Box::new(|_: &Rows| Ok(())),
    }
}

/// Runs every entry point as the first statement of a new connection; returns the failures as
/// "server: entry point: error" lines.
fn exercise(server: &str, cfg: &Config, points: &[EntryPoint]) -> Vec<String> {
    let mut failures = Vec::new();
    for p in points {
        let outcome =
            first_statement(cfg, &p.name, &p.sql).and_then(|rows| (p.check)(&rows).map(|()| rows));
        match outcome {
            Ok(rows) => println!("  ok   {server}: {} ({} rows)", p.name, rows.len()),
            Err(e) => {
                println!("  FAIL {server}: {}: {e}", p.name);
                failures.push(format!("{server}: {} [{}]: {e}", p.name, p.sql));
            }
        }
    }
    failures
}

#[test]
fn read_entry_points_work_first_in_a_new_connection_on_primary_and_hot_standby() {
    let database = TestDatabase::create();
    let mut primary = primary_config()
        .connect(NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {DB} on the primary: {e}"));
    set_up(&mut primary);

    // every view of the schema, the expected ones included
    let views: Vec<String> = primary
        .query(
            "SELECT viewname::text FROM pg_views WHERE schemaname = 'popularity_engine' ORDER BY 1",
            &[],
        )
        .expect("pg_views")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<&str> = EXPECTED_VIEWS
        .iter()
        .copied()
        .filter(|v| !views.iter().any(|w| w == v))
        .collect();
    assert!(
        missing.is_empty(),
        "views missing from schema popularity_engine: {missing:?} (has {views:?})"
    );

    let mut points = entry_points();
    for view in &views {
        points.push(EntryPoint {
            name: format!("view {view}"),
            sql: format!("SELECT * FROM popularity_engine.\"{view}\""),
            check: view_check(view),
        });
    }

    let standby = Standby::start(&mut primary);
    let lsn: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .unwrap()
        .get(0);
    standby.wait_for_replay(&lsn);
    {
        let mut s = standby.admin();
        let row = s
            .query_one(
                "SELECT pg_is_in_recovery(), current_setting('shared_preload_libraries'),
                        (SELECT count(*) FROM pg_extension WHERE extname = 'popularity_engine')",
                &[],
            )
            .expect("checking the standby");
        assert!(row.get::<_, bool>(0), "the standby is not in recovery");
        let preload: String = primary
            .query_one("SHOW shared_preload_libraries", &[])
            .unwrap()
            .get(0);
        assert_eq!(
            row.get::<_, String>(1),
            preload,
            "the standby's shared_preload_libraries differ from the primary's"
        );
        assert_eq!(
            row.get::<_, i64>(2),
            1,
            "the extension has not reached the standby"
        );
    }
    drop(primary);

    // whether a new backend has the library's settings before anything loads it (informational:
    // with the library not preloaded it has none, which is the situation tested)
    if let Ok(mut c) = fresh(&primary_config(), "the settings probe") {
        if let Ok(row) = c.query_one(
            "SELECT count(*) FROM pg_settings WHERE name LIKE 'popularity\\_engine.%'",
            &[],
        ) {
            println!(
                "read_entry_points: a new backend sees {} popularity_engine.* settings before the library loads",
                row.get::<_, i64>(0)
            );
        }
    }

    println!(
        "read_entry_points: {} entry points, each first in a new connection",
        points.len()
    );
    let mut failures = exercise("primary", &primary_config(), &points);
    failures.extend(exercise("standby", &standby_config(standby.port), &points));

    drop(standby);
    drop(database);
    assert!(
        failures.is_empty(),
        "{} read entry point call(s) failed as the first statement of a new connection:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

//! Servers and connections for the integration tests beyond the test cluster itself: running the PostgreSQL
//! binaries as the `postgres` OS user with time limits, a database of a test's own, and a hot
//! standby made with `pg_basebackup -R` of the test cluster. Each is removed when dropped.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls, SimpleQueryMessage};

use crate::{connect, url};

pub const BIN: &str = "/usr/lib/postgresql/15/bin";
pub const DB: &str = "pe_replica_reads";
pub const WORK: &str = "/tmp/popularity_engine";
/// Bound on every wait: base backup, server start and stop, WAL replay.
pub const WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Running the server binaries as the `postgres` OS user, bounded in time
// ---------------------------------------------------------------------------------------------

pub fn whoami() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `program args...` as the `postgres` OS user (through sudo unless we are postgres), killed by
/// coreutils `timeout` after `limit`.
pub fn as_postgres(program: &str, args: &[&str], limit: Duration) -> Command {
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
pub fn run(mut cmd: Command) -> Result<String, String> {
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

pub fn pg_ctl(args: &[&str]) -> Result<String, String> {
    run(as_postgres(&format!("{BIN}/pg_ctl"), args, WAIT + WAIT))
}

/// The last lines of a server log, for failure messages.
pub fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

/// PE_TEST_URL, pointed at the test's own database.
pub fn primary_config() -> Config {
    let mut cfg: Config = url()
        .parse()
        .unwrap_or_else(|e| panic!("PE_TEST_URL {:?} does not parse: {e}", url()));
    cfg.dbname(DB);
    cfg
}

pub fn primary_port() -> u16 {
    primary_config()
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
}

pub fn standby_config(port: u16) -> Config {
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
pub fn fresh(cfg: &Config, what: &str) -> Result<Client, String> {
    let mut cfg = cfg.clone();
    cfg.connect_timeout(Duration::from_secs(10))
        .application_name("read_entry_points")
        .options("-c statement_timeout=60000");
    cfg.connect(NoTls)
        .map_err(|e| format!("cannot connect for {what}: {}", describe(&e)))
}

/// A server error with its severity, SQLSTATE, message, detail, hint and context.
pub fn describe(e: &postgres::Error) -> String {
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
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn col(&self, name: &str) -> Result<Vec<Option<&str>>, String> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("no column {name} among {:?}", self.columns))?;
        Ok(self.rows.iter().map(|r| r[i].as_deref()).collect())
    }

    pub fn texts(&self, name: &str) -> Result<Vec<String>, String> {
        self.col(name)?
            .into_iter()
            .map(|v| {
                v.map(str::to_string)
                    .ok_or_else(|| format!("{name} is NULL"))
            })
            .collect()
    }

    pub fn ints(&self, name: &str) -> Result<Vec<i64>, String> {
        self.texts(name)?
            .iter()
            .map(|v| v.parse().map_err(|e| format!("{name} = {v:?}: {e}")))
            .collect()
    }

    pub fn floats(&self, name: &str) -> Result<Vec<f64>, String> {
        self.texts(name)?
            .iter()
            .map(|v| v.parse().map_err(|e| format!("{name} = {v:?}: {e}")))
            .collect()
    }
}

/// Runs `sql` as the first and only statement of a new connection.
pub fn first_statement(cfg: &Config, what: &str, sql: &str) -> Result<Rows, String> {
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
pub struct TestDatabase;

impl TestDatabase {
    pub fn create() -> TestDatabase {
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
pub struct Standby {
    data: PathBuf,
    pub port: u16,
}

impl Standby {
    pub fn log(&self) -> PathBuf {
        self.data.join("server.log")
    }

    pub fn data_str(&self) -> &str {
        self.data.to_str().expect("a UTF-8 path")
    }

    pub fn stop_and_remove(data: &Path) {
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
    pub fn start(primary: &mut Client) -> Standby {
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
    pub fn admin(&self) -> Client {
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
    pub fn wait_for_replay(&self, lsn: &str) {
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

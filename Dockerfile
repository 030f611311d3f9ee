# PostgreSQL 15 with pg_cron preloaded and popularity_engine installed.
#   docker build -t popularity_engine .
#   docker run -e POSTGRES_PASSWORD=secret -p 5432:5432 popularity_engine
# The init script creates the extension in $POSTGRES_DB (and pg_cron plus the refresh jobs when
# $POSTGRES_DB is pg_cron's database, set with -c cron.database_name=...).

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 postgresql-server-dev-15 \
      libclang-dev clang pkg-config python3 \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-pgrx --version 0.18.1 --locked \
 && cargo pgrx init --pg15 /usr/lib/postgresql/15/bin/pg_config
WORKDIR /src
COPY . .
# the upgrade scripts are composed from the packaged install script, as scripts/install-extension.sh does
RUN cargo pgrx package --pg-config /usr/lib/postgresql/15/bin/pg_config \
 && python3 scripts/compose_upgrades.py target/release/popularity_engine-pg15/usr/share/postgresql/15/extension \
 && mkdir -p /out \
 && cp -r target/release/popularity_engine-pg15/usr /out/usr

FROM postgres:15-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-cron \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/ /usr/
COPY docker/initdb-popularity_engine.sh /docker-entrypoint-initdb.d/20-popularity_engine.sh
CMD ["postgres", "-c", "shared_preload_libraries=pg_cron", "-c", "cron.database_name=postgres"]

# popularity_engine: the two commands of the README's quick start, and a few helpers.
.PHONY: demo test install bench clean-demo psql

demo:           ## build, install, start a demo cluster, load sample data, print what it knows
	bash scripts/demo.sh

test:           ## every test layer: unit, #[pg_test], pg_regress, isolation, integration
	bash scripts/test.sh

install:        ## build and install the extension into the system PostgreSQL 15
	bash scripts/install-deps.sh
	bash scripts/install-extension.sh --release

psql:           ## open psql on the demo cluster
	bash scripts/pgcluster.sh psql -d popularity_demo

clean-demo:     ## stop and delete the demo cluster
	bash scripts/pgcluster.sh destroy

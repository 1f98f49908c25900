#!/bin/sh
docker run --read-only -v roprof-postgresql-run-postgresql-0:/run/postgresql -v roprof-postgresql-var-lib-postgresql-15-main-1:/var/lib/postgresql/15/main roprof-fixture/postgresql:latest

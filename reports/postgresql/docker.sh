#!/bin/sh
docker run --read-only --tmpfs '/run/postgresql:rw,noexec,nosuid,nodev,size=16m,mode=2775,uid=100,gid=102' -v roprof-postgresql-var-lib-postgresql-15-main-1:/var/lib/postgresql/15/main roprof-fixture/postgresql:latest

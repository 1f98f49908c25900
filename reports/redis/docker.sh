#!/bin/sh
docker run --read-only -v roprof-redis-var-lib-redis-0:/var/lib/redis --tmpfs '/var/log/redis:rw,noexec,nosuid,nodev,size=16m,mode=2750,uid=100,gid=4' -p 127.0.0.1:16379:6379 roprof-fixture/redis:latest

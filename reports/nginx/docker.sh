#!/bin/sh
docker run --read-only --tmpfs '/run:rw,noexec,nosuid,nodev,size=16m,mode=755' --tmpfs '/var/lib/nginx:rw,noexec,nosuid,nodev,mode=755' --tmpfs '/var/log/nginx:rw,noexec,nosuid,nodev,size=16m,mode=755,gid=4' -p 127.0.0.1:18090:80 roprof-fixture/nginx:latest

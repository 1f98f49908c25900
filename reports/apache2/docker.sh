#!/bin/sh
docker run --read-only --tmpfs '/run:rw,noexec,nosuid,nodev,size=16m,mode=755' --tmpfs '/run/lock:rw,noexec,nosuid,nodev' --tmpfs '/var/log/apache2:rw,noexec,nosuid,nodev,size=16m,mode=750,gid=4' -p 127.0.0.1:18091:80 roprof-fixture/apache2:latest

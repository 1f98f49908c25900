#!/bin/sh
docker run --read-only -p 127.0.0.1:21211:11211 roprof-fixture/memcached:latest

#!/bin/sh
docker run --read-only -v roprof-apache2-run-0:/run -v roprof-apache2-var-log-apache2-1:/var/log/apache2 -p 127.0.0.1:18091:80 roprof-fixture/apache2:latest

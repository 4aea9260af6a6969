#!/usr/bin/env bash
# Resolves the Kafka broker's jars (deploy/kafka/pom.xml) from Maven Central into a cache folder, once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
libs="${SW_KAFKA_LIBS:-$here/../../.cache/kafka-libs}"
if [ -f "$libs/.complete" ]; then echo "$libs"; exit 0; fi
mkdir -p "$libs"
# Maven 3.8 writes colour resets even with -q -B and style.color=never; they are stripped so logs stay clean.
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" 2>&1 \
  | sed 's/\x1b\[[0-9;]*m//g' >&2
touch "$libs/.complete"
echo "$libs"

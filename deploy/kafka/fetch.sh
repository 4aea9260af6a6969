#!/usr/bin/env bash
# Resolves the Kafka broker's jars (deploy/kafka/pom.xml) from Maven Central into a cache folder, once.
# (-Dstyle.color=never: Maven 3.8 writes colour codes even in batch, quiet mode, into logs.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
libs="${SW_KAFKA_LIBS:-$here/../../.cache/kafka-libs}"
if [ -f "$libs/.complete" ]; then echo "$libs"; exit 0; fi
mkdir -p "$libs"
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2
touch "$libs/.complete"
echo "$libs"

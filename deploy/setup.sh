#!/usr/bin/env bash
# Sets up what `make demo` or `make test` needs on a Debian machine, and only what is missing:
#   deploy/setup.sh demo   Debian packages of the demo, the project's .venv, the broker's jars
#   deploy/setup.sh test   the same, plus the packages of the tests and the AsyncAPI JSON Schema (npm)
# The Makefile runs it once and again only when its inputs change (stamps .venv/.setup-demo, .venv/.setup-test).
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-test}"
case "$purpose" in demo|test) ;; *) echo "usage: deploy/setup.sh demo|test" >&2; exit 2 ;; esac

# The Debian packages, by what needs them. A word is a package, or package:command when that command on the
# PATH, wherever it came from, is as good as the package. Adding a package is adding a word.
DEMO_PACKAGES="openjdk-17-jre-headless:java maven:mvn"
TEST_PACKAGES="postgresql docker-compose:docker-compose npm:npm chromium chromium-driver:chromedriver"

say() { echo "setup: $*" >&2; }

installed() {  # installed PACKAGE[:COMMAND]
  local package="${1%%:*}" command="${1#*:}"
  if [ "$command" != "$1" ] && command -v "$command" >/dev/null 2>&1; then return 0; fi
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" = installed ]
}

wanted="$DEMO_PACKAGES"
if [ "$purpose" = test ]; then wanted="$wanted $TEST_PACKAGES"; fi
# Debian's python3 makes virtual environments only with python3-venv (ensurepip).
python3 -c 'import ensurepip, venv' 2>/dev/null || wanted="$wanted python3-venv"
missing=()
for word in $wanted; do installed "$word" || missing+=("${word%%:*}"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then as_root=(); elif command -v sudo >/dev/null 2>&1; then as_root=(sudo); else
    say "missing Debian packages: ${missing[*]}"
    say "install them as root (apt-get install -y ${missing[*]}) and run make again"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The project's virtual environment, made with the python3 on the PATH and filled from constraints.txt;
# remade only when pyproject.toml or constraints.txt changed since.
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { say "Python 3.11 or newer is needed; python3 on the PATH is $(python3 --version 2>&1)"; exit 1; }
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ] \
   || ! .venv/bin/python -c '' 2>/dev/null; then
  say "filling .venv with the Python packages of constraints.txt (the first time takes a minute or two)"
  [ -x .venv/bin/python ] && .venv/bin/python -c '' 2>/dev/null || { rm -rf .venv; python3 -m venv .venv; }
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,bench]'
  touch "$stamp"
fi

# The broker's jars, resolved from Maven Central once (a no-op when .cache/kafka-libs is complete).
deploy/kafka/fetch.sh >/dev/null

if [ "$purpose" = test ]; then
  # The official AsyncAPI 3 JSON Schema (npm @asyncapi/specs) the published AsyncAPI document is checked against.
  .venv/bin/python -m tooling.contracts.publish --ensure-asyncapi-spec >/dev/null
  touch .venv/.setup-test
fi
touch .venv/.setup-demo

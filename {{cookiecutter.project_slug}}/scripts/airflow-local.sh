#!/usr/bin/env bash
# Airflow on this machine with every server on 127.0.0.1 (what `make airflow` runs):
# `airflow db migrate`, then the API server (UI) on 127.0.0.1:$AIRFLOW_PORT, the DAG
# processor, the scheduler and the triggerer, with the LocalExecutor.
#
# No log server is started (Airflow binds those to every interface): tasks write their
# logs to the local log folder and the API server reads them from there.
# Ctrl-C or SIGTERM stops every component (a second one, or AIRFLOW_STOP_TIMEOUT
# seconds, 30, kills what is left). If one of them exits, the others are stopped and
# the script exits non-zero, naming it.
#
# Environment: AIRFLOW_HOME (required), AIRFLOW_PORT (default: AIRFLOW__API__PORT, else
# 8080), AIRFLOW_BIN (the airflow executable; default: airflow on PATH), any AIRFLOW__*
# setting.
# Each component's output: $AIRFLOW_HOME/logs/local/<component>.log
set -uo pipefail

: "${AIRFLOW_HOME:?set AIRFLOW_HOME (make airflow sets it)}"
port="${AIRFLOW_PORT:-${AIRFLOW__API__PORT:-8080}}"
airflow_bin="$(command -v "${AIRFLOW_BIN:-airflow}")" || {
	echo "airflow-local: ${AIRFLOW_BIN:-airflow} not found (run make setup)" >&2
	exit 2
}
python_bin="$(dirname "$airflow_bin")/python"
[[ -x $python_bin ]] || python_bin=python3
url="http://127.0.0.1:$port"
logs="$AIRFLOW_HOME/logs/local"
passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated}"
start_timeout="${AIRFLOW_START_TIMEOUT:-180}"
stop_timeout="${AIRFLOW_STOP_TIMEOUT:-30}"

export AIRFLOW_HOME
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$port"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-$url}"
# only used if the scheduler's health check server is turned on
export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1
mkdir -p "$logs"

say() { echo "airflow-local: $*"; }

if ! "$airflow_bin" db migrate >"$logs/db-migrate.log" 2>&1; then
	tail -n 20 "$logs/db-migrate.log" >&2
	say "airflow db migrate failed (full output: $logs/db-migrate.log)" >&2
	exit 1
fi

names=()
pids=()
sleeper=

start() { # start <component> <airflow arguments...>
	local name=$1
	shift
	"$airflow_bin" "$@" >"$logs/$name.log" 2>&1 &
	names+=("$name")
	pids+=("$!")
}

descendants() { # every process below pid $1, deepest first
	local child
	for child in $(pgrep -P "$1" 2>/dev/null); do
		descendants "$child"
		echo "$child"
	done
}

stop_all() { # TERM every component; KILL what is left after AIRFLOW_STOP_TIMEOUT or a second signal
	local pid left force=0 deadline=$((SECONDS + stop_timeout))
	trap 'force=1' INT TERM
	[[ -n $sleeper ]] && kill "$sleeper" 2>/dev/null
	for pid in ${pids[@]+"${pids[@]}"}; do
		kill -TERM "$pid" 2>/dev/null
	done
	while ((SECONDS < deadline && !force)); do
		left=0
		for pid in ${pids[@]+"${pids[@]}"}; do
			kill -0 "$pid" 2>/dev/null && left=1
		done
		((left)) || break
		sleep 0.5
	done
	for pid in ${pids[@]+"${pids[@]}"}; do
		if kill -0 "$pid" 2>/dev/null; then
			say "$(name_of "$pid") still running: killing it" >&2
			kill -KILL $(descendants "$pid") "$pid" 2>/dev/null
		fi
	done
	wait 2>/dev/null
}

name_of() {
	local i
	for i in "${!pids[@]}"; do
		[[ ${pids[$i]} == "$1" ]] && echo "${names[$i]}"
	done
}

on_signal() {
	echo
	say "stopping Airflow"
	stop_all
	say "stopped"
	exit 0
}
trap on_signal INT TERM

start api-server api-server --host 127.0.0.1 --port "$port"
start dag-processor dag-processor
start scheduler scheduler --skip-serve-logs
start triggerer triggerer --skip-serve-logs
say "starting the API server on $url, the DAG processor, the scheduler and the triggerer"
say "their output: $logs/<component>.log; Ctrl-C stops them"

healthy() {
	"$python_bin" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
		"$url/api/v2/monitor/health" >/dev/null 2>&1
}

show_login() {
	local password
	password="$("$python_bin" -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' \
		"$passwords" 2>/dev/null)"
	say "Airflow UI: $url  user: admin"
	if [[ -n $password ]]; then
		say "password: $password  (kept in $passwords)"
	else
		say "password: not in $passwords (users set by [core] simple_auth_manager_users?)"
	fi
}

ready=0
deadline=$((SECONDS + start_timeout))
while :; do
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			wait "${pids[$i]}"
			status=$?
			tail -n 20 "$logs/${names[$i]}.log" >&2
			say "${names[$i]} exited with status $status (its output: $logs/${names[$i]}.log); stopping the others" >&2
			stop_all
			exit $((status == 0 ? 1 : status))
		fi
	done
	if ((!ready)); then
		if healthy; then
			ready=1
			show_login
		elif ((SECONDS > deadline)); then
			say "the API server did not answer on $url within ${start_timeout} s; stopping" >&2
			stop_all
			exit 1
		fi
	fi
	sleep 1 &
	sleeper=$!
	wait "$sleeper"
	sleeper=
done

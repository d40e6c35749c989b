#!/usr/bin/env bash
# make demo: three meshfs nodes on 127.0.0.1 in a temporary folder, used the
# way a person would (cp, echo, cat), then torn down. Usage: demo.sh BIN
set -euo pipefail
BIN=$(realpath "${1:-bin/meshfs}")
DEMO=$(mktemp -d /tmp/meshfs-demo.XXXXXX)
export XDG_STATE_HOME=$DEMO/xdg
PIDS=()

cleanup() {
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	for m in "$DEMO"/*/mnt; do
		grep -qs " $m " /proc/mounts && { fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
	done
	rm -rf "$DEMO"
}
trap cleanup EXIT

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; eval "$@"; }

# wait_for SECONDS CMD...: poll until CMD succeeds.
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || { echo "timed out waiting for: $*" >&2; return 1; }
		sleep 0.1
	done
}

# start NAME [flags]: runs 'meshfs mount' in the background; waits for its banner.
start() {
	local name=$1; shift
	mkdir -p "$DEMO/$name/mnt"
	"$BIN" mount "$DEMO/$name/mnt" --listen 127.0.0.1:0 --state "$DEMO/$name/state" --name "$name" "$@" \
		>"$DEMO/$name.out" 2>"$DEMO/$name.log" &
	PIDS+=($!)
	wait_for 30 grep -q '^  listen' "$DEMO/$name.out"
	wait_for 30 test -r "$DEMO/$name/mnt/peers"
}
addr() { awk '/^  listen/ {print $2}' "$DEMO/$1.out"; }

say "1. alice creates a mesh"
start alice
sed 's/^/    /' "$DEMO/alice.out"

say "2. alice invites bob and carol; each joins once with the token"
cd "$DEMO"
run "$BIN invite alice/mnt | tail -n 1 > bob.token"
run "MESHFS_INVITE=\$(cat bob.token) start bob --join $(addr alice)"
run "$BIN invite alice/mnt | tail -n 1 > carol.token"
run "MESHFS_INVITE=\$(cat carol.token) start carol --join $(addr alice)"
wait_for 30 sh -c "grep carol bob/mnt/peers | grep -qw connected"

say "3. bob found carol through alice: a full mesh"
run "cat bob/mnt/peers"

say "4. alice shares a file"
head -c 5000000 /dev/urandom >report.pdf
run "cp report.pdf alice/mnt/outbox/"
wait_for 60 cmp -s report.pdf carol/mnt/inbox/alice/report.pdf
wait_for 60 test -f alice/mnt/sent/report.pdf
run "ls -l bob/mnt/inbox/alice/ carol/mnt/inbox/alice/"
run "cmp report.pdf carol/mnt/inbox/alice/report.pdf && echo identical"
run "ls alice/mnt/outbox/ alice/mnt/sent/"

say "5. everyone talks"
run "echo 'hi all, the report is in your inbox' > alice/mnt/chat"
run "echo 'got it, thanks' > carol/mnt/chat"
wait_for 20 grep -q 'got it' bob/mnt/chat
run "cat bob/mnt/chat"

say "6. status, then everyone unmounts"
run "$BIN status alice/mnt"
for n in carol bob alice; do run "$BIN unmount $n/mnt"; done
PIDS=()
run "grep -c meshfs /proc/mounts || true"
say "Demo finished; $DEMO is removed."

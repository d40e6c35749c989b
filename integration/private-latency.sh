#!/bin/bash
# Private lines and files as a user sees them: alice, bob and carol on
# 127.0.0.1 with FUSE mounts. Prints, in milliseconds, echo >> dm/bob at
# alice until the line is in bob's dm/alice (and the same for a room line
# through chat), and cp of a 20 MiB file into to/bob/ (and into outbox/)
# until bob's copy under inbox/alice/ has the right sha256. Needs FUSE.
# Usage (from the repository root, after make build):
#   bash integration/private-latency.sh [bin/meshfs]
set -u
B=$(realpath "${1:-bin/meshfs}")
T=$(mktemp -d /tmp/mpriv.XXXX)
cleanup() { pkill -f "$T/"; sleep 2; pkill -9 -f "$T/"; for n in alice bob carol; do fusermount3 -u -z $T/$n/mnt 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
for n in alice bob carol; do mkdir -p $T/$n/mnt $T/$n/state; done
$B mount $T/alice/mnt --port-mapping=off --listen 127.0.0.1:0 --state $T/alice/state --name alice > $T/alice.log 2>&1 &
for _ in $(seq 100); do [ -f $T/alice/mnt/peers ] && break; sleep 0.1; done
ADDR=$(grep -o 'listen *127.0.0.1:[0-9]*' $T/alice/mnt/peers | grep -o '127.0.0.1:[0-9]*')
for n in bob carol; do
  TOK=$($B invite $T/alice/mnt 2>/dev/null | grep -o 'msh1-[a-z0-9]*' | head -1)
  MESHFS_INVITE=$TOK $B mount $T/$n/mnt --port-mapping=off --listen 127.0.0.1:0 --state $T/$n/state --name $n --join $ADDR > $T/$n.log 2>&1 &
done
for _ in $(seq 200); do [ "$(grep -c ' connected ' $T/alice/mnt/peers 2>/dev/null)" = 2 ] && [ "$(grep -c ' connected ' $T/bob/mnt/peers 2>/dev/null)" = 2 ] && break; sleep 0.1; done
sleep 2
now() { date +%s%N; }
waitgrep() { local f=$1 s=$2; for _ in $(seq 20000); do grep -qF "$s" "$f" 2>/dev/null && return 0; sleep 0.001; done; return 1; }
# line FILE-AT-ALICE FILE-AT-BOB PREFIX: 7 lines, each timed until bob shows it.
line() {
  local from=$1 to=$2 prefix=$3 i m t0
  for i in $(seq 7); do
    m="$prefix-$i-$RANDOM"; t0=$(now); echo "$m" >> $T/alice/mnt/$from
    waitgrep $T/bob/mnt/$to "$m" && echo $(( ($(now)-t0)/1000000 ))
    sleep 0.3
  done
}
echo "private line alice -> bob, dm/bob to dm/alice (ms):"; line dm/bob dm/alice private
echo "room line alice -> bob, chat to chat (ms):"; line chat chat room
# file DIR NAME: cp 5 random 20 MiB files into alice's DIR, each timed until
# bob's inbox/alice/ copy has the right sha256.
file() {
  local dir=$1 name=$2 i sum t0
  for i in 1 2 3 4 5; do
    head -c $((20<<20)) /dev/urandom > $T/$name$i; sum=$(sha256sum < $T/$name$i)
    t0=$(now); cp $T/$name$i $T/alice/mnt/$dir/$name$i.bin
    for _ in $(seq 60000); do
      [ -f $T/bob/mnt/inbox/alice/$name$i.bin ] && [ "$(sha256sum < $T/bob/mnt/inbox/alice/$name$i.bin)" = "$sum" ] && break
      sleep 0.005
    done
    echo $(( ($(now)-t0)/1000000 ))
  done
}
echo "20 MiB file alice -> bob through to/bob/ (ms):"; file to/bob private
echo "20 MiB file alice -> everyone through outbox/, until bob has it (ms):"; file outbox public

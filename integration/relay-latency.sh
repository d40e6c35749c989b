#!/bin/bash
# Relay latency as a user sees it: bob and carol in two network namespaces
# that cannot reach each other (nftables drops what the hub would forward
# between them), alice in the hub namespace both reach. FUSE mounts, made
# with nsenter --net so they stay visible here. Prints, in milliseconds,
# echo at bob until the line is in carol's chat (and straight to alice),
# and cp of a 20 MiB and a 100 KiB file until carol's copy has the right
# sha256. Needs root, ip, nft and FUSE. Usage (from the repository root,
# after make build): bash integration/relay-latency.sh [bin/meshfs]
set -u
B=$(realpath "${1:-bin/meshfs}")
T=$(mktemp -d /tmp/mrelay.XXXX)
H=mr-hub L1=mr-l1 L2=mr-l2
cleanup() { pkill -f "$T/" ; sleep 2; pkill -9 -f "$T/"; for n in alice bob carol; do fusermount3 -u -z $T/$n/mnt 2>/dev/null; done; for n in $H $L1 $L2; do ip netns del $n 2>/dev/null; done; }
trap cleanup EXIT
for n in $H $L1 $L2; do ip netns add $n; ip -n $n link set lo up; done
ip -n $H link add mrh1 type veth peer name mrl1 netns $L1
ip -n $H link add mrh2 type veth peer name mrl2 netns $L2
ip -n $H addr add 10.77.1.1/24 dev mrh1; ip -n $H addr add 10.77.2.1/24 dev mrh2
ip -n $L1 addr add 10.77.1.2/24 dev mrl1; ip -n $L2 addr add 10.77.2.2/24 dev mrl2
for d in mrh1 mrh2; do ip -n $H link set $d up; done
ip -n $L1 link set mrl1 up; ip -n $L2 link set mrl2 up
ip -n $L1 route add default via 10.77.1.1; ip -n $L2 route add default via 10.77.2.1
ip netns exec $H sysctl -qw net.ipv4.ip_forward=1
ip netns exec $H nft -f - <<NFT
table inet mr {
  chain leaves {
    type filter hook forward priority 0;
    ip saddr 10.77.1.0/24 ip daddr 10.77.2.0/24 drop
    ip saddr 10.77.2.0/24 ip daddr 10.77.1.0/24 drop
  }
}
NFT
for n in alice bob carol; do mkdir -p $T/$n/mnt $T/$n/state; done
nsenter --net=/var/run/netns/$H $B mount $T/alice/mnt --port-mapping=off --listen 0.0.0.0:7001 --state $T/alice/state --name alice > $T/alice.log 2>&1 &
sleep 1
join() { # name ns ip hubip
  TOK=$(nsenter --net=/var/run/netns/$H $B invite $T/alice/mnt 2>/dev/null | grep -o 'msh1-[a-z0-9]*' | head -1)
  MESHFS_INVITE=$TOK nsenter --net=/var/run/netns/$2 $B mount $T/$1/mnt --port-mapping=off --listen $3:7002 --state $T/$1/state --name $1 --join $4:7001 > $T/$1.log 2>&1 &
}
join bob $L1 10.77.1.2 10.77.1.1
join carol $L2 10.77.2.2 10.77.2.1
for i in $(seq 100); do grep -q "bob.*connected" $T/carol/mnt/peers 2>/dev/null && break; grep -c connected $T/alice/mnt/peers 2>/dev/null | grep -q 2 && break; sleep 0.2; done
sleep 2
cat $T/carol/mnt/peers | head -4
now() { date +%s%N; }
waitgrep() { local f=$1 s=$2; for _ in $(seq 20000); do grep -qF "$s" "$f" 2>/dev/null && return 0; sleep 0.001; done; return 1; }
# chat TO PREFIX N: say 'PREFIX-i' at bob N times, each timed until it is in TO's chat.
chat() {
  local to=$1 prefix=$2 n=$3 i m t0
  for i in $(seq $n); do
    m="$prefix-$i-$RANDOM"; t0=$(now); echo "$m" >> $T/bob/mnt/chat
    waitgrep $T/$to/mnt/chat "$m" && echo $(( ($(now)-t0)/1000000 ))
    sleep 0.3
  done
}
echo "chat bob -> carol through alice (ms):"; chat carol relay 7
echo "chat bob -> alice direct (ms):"; chat alice direct 5
# files BYTES NAME: cp 5 random files of BYTES at bob, each timed until
# carol's copy has the right sha256.
files() {
  local bytes=$1 name=$2 i sum t0
  for i in 1 2 3 4 5; do
    head -c $bytes /dev/urandom > $T/$name$i; sum=$(sha256sum < $T/$name$i)
    t0=$(now); cp $T/$name$i $T/bob/mnt/outbox/$name$i.bin
    for _ in $(seq 60000); do
      [ -f $T/carol/mnt/inbox/bob/$name$i.bin ] && [ "$(sha256sum < $T/carol/mnt/inbox/bob/$name$i.bin)" = "$sum" ] && break
      sleep 0.005
    done
    echo $(( ($(now)-t0)/1000000 ))
  done
}
echo "20 MiB file bob -> carol through alice, until carol's copy is complete (ms):"; files $((20<<20)) big
echo "100 KiB file bob -> carol through alice (ms):"; files $((100<<10)) small
